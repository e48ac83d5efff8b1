"""Istio's string matching and the SPIFFE URI tests it generates."""

from __future__ import annotations

import pytest

from mesh.security.patterns import (
    header_matcher,
    ip_matcher,
    namespace_regex,
    principal_matcher,
    service_account_regex,
    string_matcher,
    trust_domain_matcher,
)

SLEEP = "spiffe://cluster.local/ns/foo/sa/sleep"


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("abc*", "abcd", True),
        ("abc*", "abc", True),
        ("*abc", "xabc", True),
        ("*abc", "abcx", False),
        ("*", "x", True),
        ("*", "", False),  # presence is a non-empty value (regex .+)
        ("*", None, False),
        ("abc", None, False),
    ],
)
def test_string_matching(pattern: str, value: str | None, matches: bool) -> None:
    assert string_matcher(pattern)(value) is matches


def test_header_presence_accepts_an_empty_value_and_hosts_ignore_case() -> None:
    assert header_matcher("*")("") is True
    assert header_matcher("*")(None) is False
    assert string_matcher("Example.COM", ignore_case=True)("example.com")


@pytest.mark.parametrize(
    ("block", "address", "matches"),
    [
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.1.2.3", "10.1.2.3", True),
        ("10.1.2.3", "10.1.2.4", False),
        ("10.0.0.0/8", "::ffff:10.1.2.3", True),
        ("10.0.0.0/8", "not-an-ip", False),
        ("10.0.0.0/8", "", False),
    ],
)
def test_ip_blocks(block: str, address: str, matches: bool) -> None:
    assert ip_matcher(block)(address) is matches


def test_spiffe_tests() -> None:
    assert principal_matcher("cluster.local/ns/foo/sa/sleep")(SLEEP)
    assert principal_matcher("*")(SLEEP) and not principal_matcher("*")(None)
    assert namespace_regex("foo")(SLEEP) and not namespace_regex("fo")(SLEEP)
    assert namespace_regex("*o")(SLEEP)
    assert service_account_regex("foo", "sleep")(SLEEP)
    assert service_account_regex("bar", "foo/sleep")(SLEEP)
    assert not service_account_regex("foo", "slee")(SLEEP)
    assert trust_domain_matcher("cluster.local")(SLEEP)
    assert trust_domain_matcher("cluster.*")(SLEEP)
    assert not trust_domain_matcher("example.org")(SLEEP)
