"""Namespaces in the routing engine, as Kubernetes and Istio resolve them: short names in the
caller's namespace, exportTo, DestinationRule lookup (client, then service, then root
namespace), gateways by ``ns/name`` and Gateway ports through the gateway's Service."""

from __future__ import annotations

import random

from mesh.routing import Forward, ProxyIdentity, RequestView, compile_config, decide
from mesh.snapshot import Endpoint
from mesh.topology import Service, ServicePort
from tests.helpers import load

SERVICES = (
    Service("reviews"),
    Service("reviews", "foo"),
    Service("httpbin", "foo", (ServicePort(8000, "http", 8080),)),
    Service(
        "istio-ingressgateway",
        "istio-system",
        (ServicePort(80, "http2", 8080), ServicePort(443, "https", 8443)),
        {"istio": "ingressgateway"},
    ),
)
ENDPOINTS = [
    Endpoint("reviews-v1", "reviews", "127.0.0.1", 1, {"app": "reviews", "version": "v1"}),
    Endpoint("reviews-v2", "reviews", "127.0.0.1", 2, {"app": "reviews", "version": "v2"}),
    Endpoint(
        "reviews.foo",
        "reviews",
        "127.0.0.1",
        3,
        {"app": "reviews", "version": "v1"},
        namespace="foo",
    ),
    Endpoint(
        "httpbin.foo",
        "httpbin",
        "127.0.0.1",
        4,
        {"app": "httpbin", "version": "v1"},
        namespace="foo",
    ),
]
GATEWAY = ProxyIdentity("gw", {"istio": "ingressgateway"}, True, "istio-system")


def where(text: str, host: str, proxy: ProxyIdentity, port: int | None = None) -> str:
    loaded = load(text)
    assert loaded.ok, loaded.issues
    table = compile_config(loaded.resources, ENDPOINTS, proxy, services=SERVICES)
    decision = decide(table, RequestView(host=host, port=port), random.Random(1))
    if not isinstance(decision, Forward):
        return f"{decision.status} {decision.flag}".strip()
    return decision.cluster.name


def sidecar(namespace: str) -> ProxyIdentity:
    return ProxyIdentity(f"client.{namespace}", {"app": "client"}, namespace=namespace)


def test_host_names_resolve_in_the_caller_s_namespace() -> None:
    assert (
        where("", "reviews", sidecar("default"))
        == "outbound|9080||reviews.default.svc.cluster.local"
    )
    assert (
        where("", "reviews:9080", sidecar("foo")) == "outbound|9080||reviews.foo.svc.cluster.local"
    )
    assert where("", "reviews.default", sidecar("foo")).endswith(
        "|reviews.default.svc.cluster.local"
    )
    assert where("", "reviews.default.svc.cluster.local", sidecar("foo")).endswith(
        "reviews.default.svc.cluster.local"
    )
    assert where("", "httpbin", sidecar("default")) == "404 NR"
    assert (
        where("", "httpbin.foo:8000", sidecar("default"))
        == "outbound|8000||httpbin.foo.svc.cluster.local"
    )


VS_FOO = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: foo}
spec:
  hosts: [reviews.default.svc.cluster.local]
  EXPORT
  http:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: foo}
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - {name: v2, labels: {version: v2}}
"""


def test_export_to_dot_keeps_a_virtual_service_in_its_namespace() -> None:
    private = VS_FOO.replace("EXPORT", 'exportTo: ["."]')
    assert (
        where(private, "reviews.default", sidecar("foo"))
        == "outbound|9080|v2|reviews.default.svc.cluster.local"
    )
    assert (
        where(private, "reviews", sidecar("default"))
        == "outbound|9080||reviews.default.svc.cluster.local"
    )
    public = VS_FOO.replace("EXPORT", "")
    # Public: default's sidecars get foo's rule too; the DestinationRule they use is looked
    # up in their own namespace, then the service's, then istio-system. foo's is in none of
    # them, so for them the subset is undefined (503 NC, cluster not defined).
    loaded = load(public)
    table = compile_config(loaded.resources, ENDPOINTS, sidecar("default"), services=SERVICES)
    decision = decide(table, RequestView(host="reviews"), random.Random(1))
    assert isinstance(decision, Forward) and decision.cluster.subset == "v2"
    assert not decision.cluster.defined


def test_destination_rule_lookup_client_then_service_then_root_namespace() -> None:
    def dr(namespace: str, subset: str, export: str = "") -> str:
        return (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            f"metadata: {{name: r-{namespace}, namespace: {namespace}}}\n"
            f"spec:\n  host: reviews.default.svc.cluster.local\n  {export}\n"
            f"  subsets:\n  - {{name: pick, labels: {{version: {subset}}}}}\n"
        )

    vs = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
        "spec:\n  hosts: [reviews]\n  http:\n  - route:\n"
        "    - destination: {host: reviews, subset: pick}\n"
    )
    config = "---\n".join([vs, dr("default", "v1"), dr("foo", "v2"), dr("istio-system", "v2")])
    loaded = load(config)
    for namespace, expected in (("default", "reviews-v1"), ("foo", "reviews-v2")):
        table = compile_config(loaded.resources, ENDPOINTS, sidecar(namespace), services=SERVICES)
        decision = decide(table, RequestView(host="reviews.default"), random.Random(1))
        assert isinstance(decision, Forward)
        assert [e.pod for e in decision.cluster.endpoints] == [expected], namespace
    # Only the root namespace's rule (exported): bar's clients use it.
    only_root = "---\n".join([vs, dr("istio-system", "v2")])
    table = compile_config(load(only_root).resources, ENDPOINTS, sidecar("bar"), services=SERVICES)
    decision = decide(table, RequestView(host="reviews.default"), random.Random(1))
    assert isinstance(decision, Forward) and [e.pod for e in decision.cluster.endpoints] == [
        "reviews-v2"
    ]


def gateway(name: str, namespace: str, port: int, host: str = "*") -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: Gateway\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
        f"  - port: {{number: {port}, name: http, protocol: HTTP}}\n"
        f'    hosts: ["{host}"]\n'
    )


GATEWAYS = (
    gateway("cert-manager-gateway", "istio-system", 80)
    + """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: acme, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [cert-manager-gateway]
  http:
  - match: [{uri: {prefix: /.well-known/}}]
    route: [{destination: {host: reviews.default.svc.cluster.local}}]
---
"""
    + gateway("bookinfo-gateway", "default", 8080)
    + """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway, istio-system/cert-manager-gateway]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: httpbin.foo.svc.cluster.local}}]
"""
)


def test_gateway_port_80_listens_on_the_service_s_target_port_and_merges_with_8080() -> None:
    loaded = load(GATEWAYS)
    table = compile_config(loaded.resources, ENDPOINTS, GATEWAY, services=SERVICES)
    assert table.gateway_ports == (8080,)
    assert where(GATEWAYS, "x", GATEWAY, 8080) == "404 NR"
    for path, cluster in (
        ("/.well-known/acme", "outbound|9080||reviews.default.svc.cluster.local"),
        ("/api/x", "outbound|8000||httpbin.foo.svc.cluster.local"),
    ):
        decision = decide(table, RequestView(host="any", path=path, port=8080), random.Random(1))
        assert isinstance(decision, Forward) and decision.cluster.name == cluster, path


def test_a_server_host_with_a_namespace_binds_only_that_namespace_s_virtual_services() -> None:
    restricted = GATEWAYS.replace(
        "gateways: [bookinfo-gateway, istio-system/cert-manager-gateway]",
        "gateways: [bookinfo-gateway]",
    )
    table_paths = {"/api/x": "outbound|8000||httpbin.foo.svc.cluster.local"}
    loaded = load(restricted)
    table = compile_config(loaded.resources, ENDPOINTS, GATEWAY, services=SERVICES)
    decision = decide(table, RequestView(host="any", path="/api/x", port=8080), random.Random(1))
    assert isinstance(decision, Forward) and decision.cluster.name == table_paths["/api/x"]
    # bookinfo-gateway's server now says "foo/*": bookinfo, in default, may not bind it.
    only_foo = restricted.replace(
        gateway("bookinfo-gateway", "default", 8080),
        gateway("bookinfo-gateway", "default", 8080, "foo/*"),
    )
    assert only_foo != restricted
    table = compile_config(load(only_foo).resources, ENDPOINTS, GATEWAY, services=SERVICES)
    decision = decide(table, RequestView(host="any", path="/api/x", port=8080), random.Random(1))
    assert not isinstance(decision, Forward)
