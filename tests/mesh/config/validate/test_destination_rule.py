"""DestinationRule: subsets and traffic policies."""

from __future__ import annotations

import pytest

from tests.helpers import assert_finding, doc

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    (
        "duplicate-subset",
        doc(
            "DestinationRule",
            "reviews",
            "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v1, labels: {version: v2}}",
        ),
        "Error IST0106 subsets[1].name",
        "duplicate subset name",
    ),
    (
        "consecutive-errors-deprecated",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  outlierDetection: {consecutiveErrors: 2}",
        ),
        "Warning IST0135 trafficPolicy.outlierDetection.consecutiveErrors",
        "deprecated",
    ),
    (
        "max-ejection-over-100",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  outlierDetection: {maxEjectionPercent: 120}",
        ),
        "Error IST0106 trafficPolicy.outlierDetection",
        "between 0 and 100",
    ),
    (
        "empty-traffic-policy",
        doc("DestinationRule", "details", "host: details\ntrafficPolicy: {}"),
        "Error IST0106 trafficPolicy",
        "at least one field",
    ),
    (
        "tls-no-effect",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  tls: {mode: ISTIO_MUTUAL}",
        ),
        "Info MSH0002 trafficPolicy.tls",
        "no effect",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)
