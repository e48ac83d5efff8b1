"""Findings: Istio-style printing, JSON round trip, and a refusal's one-line summary."""

from __future__ import annotations

from mesh.config.issues import ConfigError, Issue


def test_an_issue_prints_like_istioctl_analyze() -> None:
    issue = Issue(
        "Warning", "IST0133", "sum to 90", "VirtualService", "reviews", "x.yaml", 7, "http[0]"
    )
    assert str(issue) == "Warning [IST0133] (VirtualService reviews x.yaml:7) http[0]: sum to 90"
    assert str(Issue("Error", "MSH0100", "broken")) == "Error [MSH0100] broken"


def test_json_round_trip() -> None:
    issue = Issue("Error", "IST0101", "gone", "Gateway", "gw", "g.yaml", 3, "servers[0]")
    assert Issue.from_json(issue.to_json()) == issue


def test_a_config_error_names_the_first_error_and_counts_the_rest() -> None:
    error = ConfigError(
        [Issue("Info", "MSH0002", "fyi"), Issue("Error", "A", "one"), Issue("Error", "B", "two")]
    )
    assert str(error) == "Error [A] one (and 1 more error)"
    assert len(error.issues) == 3
