"""Outlier detection as a script of outcomes: feed errors, assert ejection at time t."""

from __future__ import annotations

import pytest

from mesh.config.model import OutlierDetection
from mesh.resilience.outlier import OutlierDetector, OutlierSettings

HOSTS = ["a", "b", "c", "d"]


def detector(**fields) -> OutlierDetector:
    d = OutlierDetector(OutlierDetection(**fields))
    d.set_hosts(HOSTS)
    return d


def feed(d: OutlierDetector, host: str, statuses: list[int | None], now: float = 0.0) -> list[bool]:
    return [d.record(host, s, now) for s in statuses]


def test_course_circuit_breaker_ejects_on_second_gateway_error() -> None:
    d = detector(
        consecutive_errors=2, interval=60.0, base_ejection_time=300.0, max_ejection_percent=100
    )
    assert feed(d, "a", [503, 503]) == [False, True]
    assert d.is_ejected("a", 1.0)
    # consecutiveErrors means gateway errors only (Lab decision 1): 500s never eject.
    assert feed(d, "b", [500] * 10) == [False] * 10


def test_a_success_resets_the_count() -> None:
    d = detector(consecutive_5xx_errors=3, max_ejection_percent=100)
    assert feed(d, "a", [503, 503, 200, 503, 503]) == [False] * 5
    assert feed(d, "a", [503]) == [True]


def test_block_alone_gets_envoys_default_of_five() -> None:
    d = detector(max_ejection_percent=100)
    assert feed(d, "a", [500] * 5) == [False] * 4 + [True]
    assert OutlierSettings.from_config(OutlierDetection()).consecutive_5xx == 5


def test_zero_disables_5xx_detection() -> None:
    d = detector(consecutive_5xx_errors=0, max_ejection_percent=100)
    assert not any(feed(d, "a", [503] * 20))


def test_gateway_errors_detector_ignores_500() -> None:
    d = detector(consecutive_5xx_errors=0, consecutive_gateway_errors=2, max_ejection_percent=100)
    assert feed(d, "a", [503, 500, 502]) == [False, False, False]
    assert feed(d, "a", [504]) == [True]


def test_local_failures_count_as_errors() -> None:
    d = detector(consecutive_5xx_errors=2, max_ejection_percent=100)
    assert feed(d, "a", [None, None]) == [False, True]


def test_ejection_time_grows_with_each_ejection_and_returns_at_sweeps() -> None:
    d = detector(
        consecutive_5xx_errors=1, interval=1.0, base_ejection_time=10.0, max_ejection_percent=100
    )
    assert feed(d, "a", [503], now=0.0) == [True]
    assert d.sweep(9.0) == [] and d.is_ejected("a", 9.0)
    assert d.sweep(10.0) == ["a"] and not d.is_ejected("a", 10.0)
    assert feed(d, "a", [503], now=11.0) == [True]
    assert d.sweep(30.0) == [] and d.is_ejected("a", 30.0)  # second ejection lasts 20 s
    assert d.sweep(31.0) == ["a"]


def test_max_ejection_percent_caps_but_one_host_is_always_ejectable() -> None:
    d = detector(consecutive_5xx_errors=1, max_ejection_percent=10)
    assert feed(d, "a", [503]) == [True]  # 10 % of 4 hosts rounds down to 0, but one is allowed
    assert feed(d, "b", [503]) == [False]
    d = detector(consecutive_5xx_errors=1, max_ejection_percent=50)
    assert [feed(d, h, [503])[0] for h in HOSTS] == [True, True, False, False]


def test_no_policy_never_ejects() -> None:
    d = OutlierDetector(None)
    assert not d.enabled
    assert not d.record("a", 503, 0.0)


def test_describe_shows_state_for_the_admin_page() -> None:
    d = detector(consecutive_5xx_errors=1, base_ejection_time=30.0, max_ejection_percent=100)
    d.record("a", 503, 100.0)
    state = d.describe("a", 110.0)
    assert state["ejected"] and state["ejected_for_seconds"] == pytest.approx(20.0)
    assert state["total_ejections"] == 1
