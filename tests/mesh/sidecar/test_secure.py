"""The sidecar's security policy state (``mesh.sidecar.secure``): inbound mode, upstream TLS
plan, XFCC and RBAC per request."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from mesh.config.loader import normal_documents
from mesh.routing import ProxyIdentity, compile_snapshot
from mesh.security.mtls import ClientTLS, MtlsMode
from mesh.sidecar.secure import PeerInfo, Security, pod_of
from mesh.snapshot import Endpoint, Snapshot
from mesh.topology import Pod
from tests.helpers import parsed_exchange

SERVER = Pod("httpbin-1", {"app": "httpbin"}, namespace="foo", service_account="httpbin")


def pa(namespace: str, mode: str, selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": namespace}, "spec": spec}  # fmt: skip


def ap(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": "foo"}, "spec": spec}  # fmt: skip


def table(resources: list[dict[str, Any]], *endpoints: Endpoint, services: Any = ()) -> Any:
    snap = Snapshot(1, normal_documents(resources), tuple(endpoints), services=tuple(services))
    return compile_snapshot(snap, ProxyIdentity("sleep-1", {"app": "sleep"}, False, "foo"))


def ep(pod: str, port: int, proxy: str = "sidecar", sa: str = "httpbin") -> Endpoint:
    return Endpoint(pod, "httpbin", "127.0.0.1", port, {"app": "httpbin"}, namespace="foo",
                    service_account=sa, proxy=proxy)  # fmt: skip


def security(identity: bool = True, pod: Pod = SERVER) -> Security:
    creds = SimpleNamespace(
        uri="spiffe://cluster.local/ns/foo/sa/httpbin", client="ctx", not_after=1.0
    )
    secrets = SimpleNamespace(current=creds if identity else None, status=lambda: {})
    return Security(pod, 9080, secrets, log=lambda _: None)  # type: ignore[arg-type]


def installed(sec: Security, resources: list[dict[str, Any]], *endpoints: Endpoint) -> Security:
    t = table(resources, *endpoints)
    sec.install(t, sec.prepare(t))
    return sec


def test_inbound_mode_follows_peer_authentication() -> None:
    sec = installed(security(), [])
    assert sec.mode is MtlsMode.PERMISSIVE and sec.mode_policy is None
    sec = installed(security(), [pa("istio-system", "STRICT"), pa("foo", "DISABLE")])
    assert sec.mode is MtlsMode.DISABLE and sec.mode_policy == "foo/default"


def test_upstream_plan_auto_mtls_per_endpoint() -> None:
    sec = installed(security(), [], ep("a", 1001), ep("legacy", 1002, proxy="none"))
    name = "outbound|9080||httpbin.foo.svc.cluster.local"
    tls = sec.upstream(name, "127.0.0.1:1001")
    assert tls is not None and tls.mode is ClientTLS.ISTIO_MUTUAL
    assert tls.sni == "outbound_.9080_._.httpbin.foo.svc.cluster.local"
    assert tls.expected is not None and tls.expected.principal == "cluster.local/ns/foo/sa/httpbin"
    assert tls.pool_key != "127.0.0.1:1001"  # never mixed with plaintext connections
    assert sec.upstream(name, "127.0.0.1:1002") is None  # no sidecar: plaintext
    assert sec.client_context(tls) == "ctx"


def test_no_identity_means_plaintext_and_strict_endpoints_are_known() -> None:
    sec = installed(security(identity=False), [pa("istio-system", "STRICT")], ep("a", 1001))
    assert sec.plan == {}
    assert sec.strict_endpoints == {"127.0.0.1:1001"}


def test_destination_rule_disable_wins_over_auto_mtls() -> None:
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
          "metadata": {"name": "d", "namespace": "foo"},
          "spec": {"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}}  # fmt: skip
    sec = installed(security(), [dr], ep("a", 1001))
    assert sec.plan == {}


def _peer() -> PeerInfo:
    from mesh.security.xfcc import ClientCertDetails

    return PeerInfo(
        "cluster.local/ns/foo/sa/sleep",
        ClientCertDetails(("spiffe://x",), "ab", "", ("spiffe://y",)),
    )


def test_inbound_xfcc_over_mtls_and_plaintext() -> None:
    sec = installed(security(), [])
    ex = parsed_exchange(b"GET / HTTP/1.1\r\nx-forwarded-client-cert: By=forged\r\n\r\n")
    ex.conn.tls = _peer()  # type: ignore[attr-defined]
    assert sec.inbound(ex, "/", "httpbin") is None
    assert ex.mtls and ex.peer_principal == "cluster.local/ns/foo/sa/sleep"
    values = [v for n, v in ex.headers if n == b"x-forwarded-client-cert"]
    assert values == [b'By=forged,By=spiffe://x;Hash=ab;Subject="";URI=spiffe://y']
    ex = parsed_exchange(b"GET / HTTP/1.1\r\nx-forwarded-client-cert: By=forged\r\n\r\n")
    assert sec.inbound(ex, "/", "httpbin") is None
    assert not ex.mtls and "x-forwarded-client-cert" not in ex.hdict
    assert all(n != b"x-forwarded-client-cert" for n, _ in ex.headers)


def test_rbac_deny_allow_and_dry_run_counters() -> None:
    allow = ap(
        {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/foo/sa/sleep"]}}]}]}
    )
    dry = ap({"action": "DENY", "rules": [{}]}, name="dry")
    dry["metadata"]["annotations"] = {"istio.io/dry-run": "true"}
    sec = installed(security(), [allow, dry])
    assert [f"{p.namespace}/{p.name}" for p in sec.policies] == ["foo/p", "foo/dry"]
    plain = parsed_exchange(b"GET /x HTTP/1.1\r\n\r\n")
    denied = sec.inbound(plain, "/x", "httpbin")
    assert denied is not None and denied.status == 403
    signed = parsed_exchange(b"GET /x HTTP/1.1\r\n\r\n")
    signed.conn.tls = _peer()  # type: ignore[attr-defined]
    assert sec.inbound(signed, "/x", "httpbin") is None
    assert sec.stats["rbac_denied"] == 1 and sec.stats["rbac_allowed"] == 1
    assert sec.stats["rbac_shadow_denied"] == 2  # the dry-run DENY matched both, enforced never
    assert any(line.startswith("mesh_security_total") for line in sec.prometheus())


def test_handshake_failures_are_counted_by_reason() -> None:
    sec = security()
    sec.handshake_failed(OSError("certificate verify failed: certificate has expired"))
    sec.handshake_failed(
        OSError("certificate verify failed: unable to get local issuer certificate")
    )
    sec.handshake_failed(OSError("peer did not return a certificate"))
    stats = sec.stats
    assert stats["ssl_fail_verify_cert_expired"] == 1
    assert stats["ssl_fail_verify_unknown_ca"] == 1
    assert stats["ssl_fail_verify_no_cert"] == 1
    assert stats["ssl_connection_error"] == 3


def test_port_level_mtls_names_the_container_port_not_the_local_listener() -> None:
    from mesh.topology import Service, ServicePort

    port_level = pa("foo", "STRICT", {"app": "httpbin"})
    port_level["spec"]["portLevelMtls"] = {"8080": {"mode": "DISABLE"}}
    catalog = [Service("httpbin", "foo", (ServicePort(8000, "http", 8080),))]
    sec = security()
    t = table([port_level], ep("a", 21562), services=catalog)  # the lab's port: not 8080
    sec.install(t, sec.prepare(t), catalog)
    assert sec.mode is MtlsMode.DISABLE  # this pod's container port is the Service's targetPort
    assert sec.strict_endpoints == frozenset() and sec.plan == {}  # clients: plaintext to 8080
    sec.install(t, sec.prepare(t))  # without the catalog: the listener's own port
    assert sec.mode is MtlsMode.STRICT


def test_pod_of_options() -> None:
    options = SimpleNamespace(pod="p", labels={"app": "a"}, namespace="foo", service_account="sa",
                              gateway=False, plain=False, inbound_port=9080, service_name="a")  # fmt: skip
    pod = pod_of(options)
    assert (pod.namespace, pod.service_account, pod.proxy, pod.port) == (
        "foo",
        "sa",
        "sidecar",
        9080,
    )


def test_connect_without_credentials_fails_closed() -> None:
    sec = installed(security(), [], ep("a", 1001))
    tls = sec.upstream("outbound|9080||httpbin.foo.svc.cluster.local", "127.0.0.1:1001")
    assert tls is not None
    sec.secrets.current = None  # type: ignore[union-attr]
    loop = asyncio.new_event_loop()
    try:
        pool = SimpleNamespace(loop=loop, active=set())
        assert loop.run_until_complete(sec.connect(pool, "k", "127.0.0.1", 1, 1.0, tls)) is None  # type: ignore[arg-type]
    finally:
        loop.close()
