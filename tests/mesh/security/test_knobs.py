"""MESH_CERT_TTL and MESH_CERT_GRACE_RATIO: Istio's defaults, workshop values, clear errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mesh.security.knobs import KnobError, cert_ttl, grace_ratio, parse_ttl


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("2m", 120), ("90s", 90), ("1h30m", 5400), ("45", 45), ("1d", 86400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_ttl(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2x", "m2", "1h 30m", "-5m", "nan", "inf"])
def test_bad_durations_name_the_variable(text: str) -> None:
    with pytest.raises(KnobError, match="MESH_CERT_TTL"):
        parse_ttl(text)


def test_too_short_a_lifetime_is_refused() -> None:
    with pytest.raises(KnobError, match="at least 10 s"):
        parse_ttl("5s")


def test_defaults_are_istios() -> None:
    assert cert_ttl({}) == timedelta(hours=24)
    assert grace_ratio({}) == 0.5
    assert cert_ttl({"MESH_CERT_TTL": "2m"}) == timedelta(minutes=2)
    assert grace_ratio({"MESH_CERT_GRACE_RATIO": "0.25"}) == 0.25


@pytest.mark.parametrize("text", ["0", "1", "1.5", "half"])
def test_bad_ratios(text: str) -> None:
    with pytest.raises(KnobError, match="MESH_CERT_GRACE_RATIO"):
        grace_ratio({"MESH_CERT_GRACE_RATIO": text})
