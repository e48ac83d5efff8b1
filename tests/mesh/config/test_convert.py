"""Plain values → model: the one naming rule and durations."""

from __future__ import annotations

import pytest

from mesh.config.convert import Converter, parse_duration, yaml_name
from mesh.config.model import AuthorizationPolicy, DestinationRule, Gateway, Rule


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


def test_a_null_list_entry_where_an_object_is_required_is_an_error_not_a_crash() -> None:
    # Found by the loader fuzz test: `subsets: [null]` crashed the DestinationRule checks.
    converter = Converter()
    spec = converter.convert({"host": "reviews", "subsets": [None]}, DestinationRule, "")
    assert spec == DestinationRule(host="reviews")
    assert converter.problems == [("subsets[0]", "must not be null")]


def test_a_model_that_reports_null_entries_itself_keeps_them() -> None:
    converter = Converter()
    spec = converter.convert({"rules": [None, {}]}, AuthorizationPolicy, "")
    assert spec == AuthorizationPolicy(rules=(None, Rule()))
    assert converter.problems == []


def test_an_entry_that_fails_to_convert_is_reported_and_dropped() -> None:
    # Found by the loader fuzz test: `servers: [false]` crashed the Gateway checks.
    converter = Converter()
    spec = converter.convert({"servers": [False], "selector": {"istio": 5}}, Gateway, "")
    assert spec == Gateway()
    assert converter.problems == [
        ("servers[0]", "must be a mapping, not boolean False"),
        ("selector.istio", 'must be a string, not integer 5 (quote it: "5")'),
    ]
