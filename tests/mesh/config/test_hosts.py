"""Host names across namespaces: Istio's short-name expansion, Kubernetes DNS aliases,
gateway references, ports ignored, wildcard intersection."""

from __future__ import annotations

import pytest

from mesh.config.hosts import (
    aliases,
    bare,
    display,
    gateway_ref,
    host_matches,
    intersect,
    qualify,
    server_host,
    service_of,
    split_host_port,
)


@pytest.mark.parametrize(
    ("written", "namespace", "resolved"),
    [
        ("reviews", "default", "reviews.default.svc.cluster.local"),
        ("Reviews:9080", "foo", "reviews.foo.svc.cluster.local"),
        # Istio expands only names without a dot (ResolveShortnameToFQDN).
        ("reviews.default", "foo", "reviews.default"),
        ("reviews.default.svc.cluster.local.", "foo", "reviews.default.svc.cluster.local"),
        ("bookinfo.local", "default", "bookinfo.local"),
        ("*", "default", "*"),
        ("10.0.0.1", "default", "10.0.0.1"),
    ],
)
def test_config_hosts_resolve_in_the_resource_namespace(
    written: str, namespace: str, resolved: str
) -> None:
    assert qualify(written, namespace) == resolved


def test_a_service_is_reached_by_its_kubernetes_dns_names_short_only_at_home() -> None:
    fqdn = "reviews.default.svc.cluster.local"
    assert aliases(fqdn, "default") == (
        fqdn,
        "reviews.default.svc",
        "reviews.default",
        "reviews",
    )
    assert "reviews" not in aliases(fqdn, "foo")
    assert aliases("bookinfo.local", "default") == ("bookinfo.local",)
    assert service_of(fqdn) == ("reviews", "default")
    assert service_of("a.b.c.svc.cluster.local") is None
    assert display(fqdn) == "reviews"
    assert display("httpbin.foo.svc.cluster.local") == "httpbin.foo"
    assert bare("Reviews:9080") == "reviews"


def test_split_host_port_keeps_ipv6_literals_whole() -> None:
    assert split_host_port("[::1]:8080") == ("[::1]", 8080)
    assert split_host_port("reviews:9080") == ("reviews", 9080)
    assert split_host_port("reviews") == ("reviews", None)


def test_gateway_references_resolve_as_istio_s_resolve_gateway_name() -> None:
    assert gateway_ref("bookinfo-gateway", "default") == "default/bookinfo-gateway"
    assert gateway_ref("istio-system/gw", "default") == "istio-system/gw"
    assert gateway_ref("./gw", "foo") == "foo/gw"
    assert gateway_ref("gw.istio-system.svc.cluster.local", "default") == "istio-system/gw"
    assert gateway_ref("mesh", "foo") == "mesh"
    assert server_host("foo/*.example.com", "istio-system") == ("foo", "*.example.com")
    assert server_host("./a.com", "istio-system") == ("istio-system", "a.com")
    assert server_host("*", "istio-system") == ("*", "*")


def test_wildcards_match_and_intersect_as_istio_does() -> None:
    assert host_matches("*.bookinfo.com", "a.bookinfo.com")
    assert not host_matches("*.bookinfo.com", "bookinfo.com")
    assert intersect("*", "reviews") == "reviews"
    assert intersect("*.com", "*.bookinfo.com") == "*.bookinfo.com"
    assert intersect("a.com", "b.com") is None
