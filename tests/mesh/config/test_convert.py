"""Plain values → model: the one naming rule and durations."""

from __future__ import annotations

import pytest

from mesh.config.convert import parse_duration, yaml_name


@pytest.mark.parametrize(
    ("python", "yaml"),
    [
        ("consecutive_5xx_errors", "consecutive5xxErrors"),
        ("http1_max_pending_requests", "http1MaxPendingRequests"),
        ("use_source_ip", "useSourceIp"),
        ("uri_regex_rewrite", "uriRegexRewrite"),
        ("hosts", "hosts"),
    ],
)
def test_one_naming_rule_maps_snake_to_camel(python: str, yaml: str) -> None:
    assert yaml_name(python) == yaml


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2.5s", 2.5), ("100ms", 0.1), ("1m", 60.0), ("1h", 3600.0), ("1m30s", 90.0), ("0.5s", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
