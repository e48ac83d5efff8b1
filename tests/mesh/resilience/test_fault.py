"""Fault rolls: percentages, the deprecated percent, and no percentage meaning no fault."""

from __future__ import annotations

import random

from mesh.config.model import Abort, Delay, HTTPFaultInjection, Percent
from mesh.resilience.fault import roll


def test_no_fault() -> None:
    assert roll(None, random.Random(1)) == (None, None)


def test_hundred_percent_always_fires() -> None:
    fault = HTTPFaultInjection(delay=Delay(fixed_delay=2.5, percentage=Percent(100)))
    assert all(roll(fault, random.Random(s)) == (2.5, None) for s in range(20))


def test_missing_percentage_never_fires() -> None:
    fault = HTTPFaultInjection(delay=Delay(fixed_delay=1.0), abort=Abort(http_status=503))
    assert all(roll(fault, random.Random(s)) == (None, None) for s in range(50))


def test_abort_rate_within_binomial_tolerance() -> None:
    fault = HTTPFaultInjection(abort=Abort(http_status=503, percentage=Percent(20)))
    rng = random.Random(99)
    n = 5000
    hits = sum(roll(fault, rng)[1] == 503 for _ in range(n))
    sigma = (n * 0.2 * 0.8) ** 0.5
    assert abs(hits - n * 0.2) <= 3.29 * sigma  # 99.9 % two-sided


def test_deprecated_percent_applies_to_delay() -> None:
    fault = HTTPFaultInjection(delay=Delay(fixed_delay=1.0, percent=100))
    assert roll(fault, random.Random(1)) == (1.0, None)
