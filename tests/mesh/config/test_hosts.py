"""Host names: one short name for every spelling, ports ignored, wildcard intersection."""

from __future__ import annotations

import pytest

from mesh.config.hosts import fqdn, gateway_key, host_matches, intersect, normalize, split_host_port


@pytest.mark.parametrize(
    ("written", "short"),
    [
        ("reviews", "reviews"),
        ("Reviews:9080", "reviews"),
        ("reviews.default", "reviews"),
        ("reviews.default.svc", "reviews"),
        ("reviews.default.svc.cluster.local.", "reviews"),
        ("bookinfo.local", "bookinfo.local"),
    ],
)
def test_normalize(written: str, short: str) -> None:
    assert normalize(written) == short


def test_split_host_port_keeps_ipv6_literals_whole() -> None:
    assert split_host_port("[::1]:8080") == ("[::1]", 8080)
    assert split_host_port("reviews:9080") == ("reviews", 9080)
    assert split_host_port("reviews") == ("reviews", None)


def test_fqdn_and_gateway_keys() -> None:
    assert fqdn("reviews") == "reviews.default.svc.cluster.local"
    assert fqdn("bookinfo.local") == "bookinfo.local"
    assert gateway_key("default/bookinfo-gateway") == gateway_key("bookinfo-gateway")
    assert gateway_key("istio-system/gw") == "istio-system/gw"


def test_wildcards_match_and_intersect_as_istio_does() -> None:
    assert host_matches("*.bookinfo.com", "a.bookinfo.com")
    assert not host_matches("*.bookinfo.com", "bookinfo.com")
    assert intersect("*", "reviews") == "reviews"
    assert intersect("*.com", "*.bookinfo.com") == "*.bookinfo.com"
    assert intersect("a.com", "b.com") is None
