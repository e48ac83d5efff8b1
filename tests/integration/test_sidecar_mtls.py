"""mTLS between real sidecars on loopback, and AuthorizationPolicy at the server's sidecar.

Two sidecar processes: ``sleep`` (namespace foo, the client: its app calls the outbound
listener) and ``httpbin`` (namespace foo, the server: its app is an ``Upstream`` that records
what reaches it). Certificates are issued in-process by ``mesh.security.ca.MeshCA`` and
written to each pod's secrets directory as the agent writes them (``write_secrets``).
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mesh.security.ca import MeshCA
from mesh.sidecar.testing import (
    SidecarProcess,
    Upstream,
    http_request,
    read_status,
    wait_for,
    write_secrets,
    write_snapshot,
)
from mesh.snapshot import Endpoint

XFCC = "x-forwarded-client-cert"


def pa(name: str, namespace: str, mode: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"mtls": {"mode": mode}, **spec},
    }


def ap(name: str, namespace: str, spec: dict[str, Any], **annotations: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata,
        "spec": spec,
    }


def dr_tls(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "httpbin", "namespace": "foo"},
        "spec": {"host": "httpbin.foo.svc.cluster.local", "trafficPolicy": {"tls": {"mode": mode}}},
    }


@dataclass
class Pair:
    mesh_dir: Path
    ca: MeshCA
    app: Upstream
    server: SidecarProcess
    client: SidecarProcess
    server_secrets: Path
    client_secrets: Path
    version: int = 0
    extra_endpoints: list[Endpoint] = field(default_factory=list)

    def endpoint(self, **kw: Any) -> Endpoint:
        defaults: dict[str, Any] = {
            "pod": "httpbin-1",
            "service": "httpbin",
            "address": "127.0.0.1",
            "port": self.server.inbound_port,
            "labels": {"app": "httpbin", "version": "v1"},
            "namespace": "foo",
            "service_account": "httpbin",
        }
        return Endpoint(**(defaults | kw))

    def apply(self, resources: list[dict[str, Any]], **endpoint: Any) -> None:
        self.version += 1
        write_snapshot(
            self.mesh_dir,
            self.version,
            resources,
            [self.endpoint(**endpoint), *self.extra_endpoints],
        )
        self.server.wait_version(self.version)
        self.client.wait_version(self.version)

    def get(self, path: str = "/get", headers: dict[str, str] | None = None) -> Any:
        """The sleep app's call: through its sidecar's outbound listener."""
        return http_request(
            "127.0.0.1", self.client.outbound_port, "GET",
            f"http://httpbin.foo.svc.cluster.local:9080{path}", headers=headers,
        )  # fmt: skip

    def direct(self, path: str = "/get", headers: dict[str, str] | None = None) -> Any:
        """A client without sidecar (``legacy``): plaintext to the server's inbound port."""
        return http_request("127.0.0.1", self.server.inbound_port, "GET", path, headers=headers)

    def certs(self, proc: SidecarProcess) -> dict[str, Any]:
        return dict(proc.admin_json("/certs"))


def _identity_loaded(proc: SidecarProcess) -> bool:
    return bool(proc.admin_json("/certs").get("identity"))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    mesh_dir = tmp_path / "mesh"
    ca = MeshCA.create(datetime.now(UTC))
    server_secrets = tmp_path / "pods" / "httpbin-1" / "secrets"
    client_secrets = tmp_path / "pods" / "sleep-1" / "secrets"
    write_secrets(server_secrets, ca, "foo", "httpbin")
    write_secrets(client_secrets, ca, "foo", "sleep")
    with Upstream(name="httpbin") as app:
        server = SidecarProcess(
            mesh_dir, pod="httpbin-1", labels={"app": "httpbin", "version": "v1"},
            app_port=app.port,
            extra=["--namespace", "foo", "--service-account", "httpbin",
                   "--secrets-dir", str(server_secrets)],
        )  # fmt: skip
        client = SidecarProcess(
            mesh_dir, pod="sleep-1", labels={"app": "sleep", "version": "v1"},
            extra=["--namespace", "foo", "--service-account", "sleep",
                   "--secrets-dir", str(client_secrets)],
        )  # fmt: skip
        p = Pair(mesh_dir, ca, app, server, client, server_secrets, client_secrets)
        try:
            server.start()
            client.start()
            p.apply([])
            wait_for(lambda: _identity_loaded(server) and _identity_loaded(client), 10, "identity")
            yield p
        finally:
            client.stop()
            server.stop()


def _reset(fn: Any) -> bool:
    """Whether calling ``fn`` ends in a connection reset (ECONNRESET) — what curl reports as
    ``(56) Recv failure: Connection reset by peer``."""
    try:
        fn()
    except ConnectionResetError:
        return True
    except OSError as exc:
        return exc.errno == errno.ECONNRESET
    return False


# --------------------------------------------------------------------- PeerAuthentication


def test_permissive_accepts_mtls_and_plaintext_and_the_app_sees_xfcc(pair: Pair) -> None:
    r = pair.get(headers={XFCC: "By=forged"})
    assert r.status == 200, r.body
    seen = pair.app.requests[-1].headers[XFCC]
    assert seen.startswith("By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=")
    assert seen.endswith(';Subject="";URI=spiffe://cluster.local/ns/foo/sa/sleep')
    assert "forged" not in seen  # the client's own header was not passed on by its sidecar...
    # ...hash: hex SHA-256 of the client's certificate
    digest = seen.split(";")[1].removeprefix("Hash=")
    assert len(digest) == 64 and int(digest, 16) >= 0
    r = pair.direct(headers={XFCC: "By=forged"})
    assert r.status == 200
    assert XFCC not in pair.app.requests[-1].headers  # plaintext: a client cannot forge one
    stats = pair.certs(pair.server)["stats"]
    assert stats["ssl_handshake"] >= 1 and stats["plaintext_accepted"] >= 1


def test_strict_resets_plaintext_and_keeps_mtls(pair: Pair) -> None:
    pair.apply([pa("default", "istio-system", "STRICT")])
    assert pair.get().status == 200  # the sidecar client speaks mTLS
    assert _reset(lambda: pair.direct())  # legacy: reset at the connection, no HTTP page
    status = wait_for(lambda: read_status(pair.mesh_dir, "httpbin-1"), 5, "status")
    assert status.get("mtls_mode") == "STRICT"
    assert status.get("identity") == "spiffe://cluster.local/ns/foo/sa/httpbin"


def test_disable_serves_plaintext_only(pair: Pair) -> None:
    pair.apply([pa("default", "foo", "DISABLE")])
    # Auto mTLS: the namespace is DISABLE, the client sends plaintext.
    assert pair.get().status == 200
    assert XFCC not in pair.app.requests[-1].headers
    assert pair.direct().status == 200
    # A client forcing mTLS at a DISABLE server: its TLS reaches a plaintext listener: 503 UF.
    pair.apply([pa("default", "foo", "DISABLE"), dr_tls("ISTIO_MUTUAL")])
    r = pair.get()
    assert r.status == 503 and r.headers.get("x-envoy-response-flags", "UF").startswith("UF")


def test_dr_disable_to_strict_is_503_uc(pair: Pair) -> None:
    pair.apply([pa("default", "istio-system", "STRICT"), dr_tls("DISABLE")])
    r = pair.get()
    assert r.status == 503
    assert r.body.endswith(b"reset reason: connection termination"), r.body


def test_auto_mtls_to_an_endpoint_without_sidecar_is_plaintext(pair: Pair) -> None:
    # The endpoint is the app itself (no sidecar): a TLS ClientHello would reach the app.
    pair.apply([], port=pair.app.port, proxy="none")
    assert pair.get().status == 200
    assert pair.app.requests[-1].method == "GET"
    assert pair.certs(pair.client)["upstream_tls"] == {}


# --------------------------------------------------------------------- bad certificates


def _raw_mtls(pair: Pair, chain: bytes, key: bytes, root: bytes) -> Any:
    """A hand-made mTLS client with the given certificate (an attacker or a broken agent)."""
    d = pair.mesh_dir.parent / f"raw-{time.monotonic_ns()}"
    d.mkdir()
    (d / "c.pem").write_bytes(chain)
    (d / "k.pem").write_bytes(key)
    (d / "r.pem").write_bytes(root)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(str(d / "r.pem"))
    ctx.load_cert_chain(str(d / "c.pem"), str(d / "k.pem"))
    with socket.create_connection(("127.0.0.1", pair.server.inbound_port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"GET /get HTTP/1.1\r\nhost: httpbin\r\nconnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            return data


def _credentials(ca: MeshCA, namespace: str, sa: str, *, ttl: float = 3600, now: float | None = None,
                 trust_domain: str = "cluster.local") -> tuple[bytes, bytes, bytes]:  # fmt: skip
    from datetime import timedelta

    from mesh.security.certs import make_csr, new_private_key, private_key_pem
    from mesh.security.identity import Identity

    identity = Identity(namespace, sa, trust_domain)
    key = new_private_key()
    moment = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    issued = ca.sign(make_csr(key, identity), identity, moment, timedelta(seconds=ttl))
    return issued.cert_chain_pem, private_key_pem(key), issued.root_cert_pem


def test_good_raw_client_is_served(pair: Pair) -> None:
    chain, key, root = _credentials(pair.ca, "foo", "sleep")
    assert _raw_mtls(pair, chain, key, root).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("problem", ["expired", "wrong_ca", "wrong_san"])
def test_bad_client_certificates_are_refused_and_counted(pair: Pair, problem: str) -> None:
    root = pair.ca.root_pem
    if problem == "expired":
        chain, key, _ = _credentials(pair.ca, "foo", "sleep", ttl=60, now=time.time() - 3600)
        stat = "ssl_fail_verify_cert_expired"
    elif problem == "wrong_ca":
        chain, key, _ = _credentials(MeshCA.create(datetime.now(UTC)), "foo", "sleep")
        stat = "ssl_fail_verify_unknown_ca"
    else:
        chain, key, _ = _credentials(pair.ca, "foo", "sleep", trust_domain="evil.example")
        stat = "ssl_fail_verify_san"
    try:
        answer = _raw_mtls(pair, chain, key, root)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        answer = b""
    assert answer == b""
    assert not pair.app.requests
    wait_for(lambda: pair.certs(pair.server)["stats"][stat] >= 1, 5, stat)


def test_client_certificate_missing_under_strict(pair: Pair) -> None:
    pair.apply([pa("default", "istio-system", "STRICT")])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with socket.create_connection(("127.0.0.1", pair.server.inbound_port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                if not tls.recv(100):
                    raise ConnectionResetError("closed")
    wait_for(lambda: pair.certs(pair.server)["stats"]["ssl_fail_verify_no_cert"] >= 1, 5, "no cert")


def test_server_with_the_wrong_identity_is_refused_by_the_client(pair: Pair) -> None:
    # The endpoint says its pods run as "other": httpbin's certificate does not match.
    pair.apply([], service_account="other")
    r = pair.get()
    assert r.status == 503 and b"connection failure" in r.body
    assert pair.certs(pair.client)["stats"]["upstream_ssl_fail_verify_san"] >= 1


def test_a_bad_generation_is_refused_and_the_last_good_kept(pair: Pair) -> None:
    before = pair.certs(pair.server)["identity"]["generation"]
    chain, _, root = _credentials(pair.ca, "foo", "httpbin")
    _, other_key, _ = _credentials(pair.ca, "foo", "httpbin")
    write_secrets(pair.server_secrets, pair.ca, "foo", "httpbin", generation=7, key_pem=other_key,
                  chain_pem=chain)  # fmt: skip
    wait_for(lambda: pair.certs(pair.server)["secrets"]["error"], 5, "refusal")
    assert "not the key of" in pair.certs(pair.server)["secrets"]["error"]
    assert pair.certs(pair.server)["identity"]["generation"] == before
    assert pair.get().status == 200
    write_secrets(pair.server_secrets, pair.ca, "foo", "httpbin", generation=8,
                  chain_pem=b"garbage")  # fmt: skip
    wait_for(lambda: "..gen-8" in (pair.certs(pair.server)["secrets"]["error"] or ""), 5, "gen 8")
    assert pair.get().status == 200


# --------------------------------------------------------------------- rotation


def test_three_rotations_under_continuous_requests_fail_nothing(pair: Pair) -> None:
    failures: list[Any] = []
    done = threading.Event()
    count = [0]

    def load() -> None:
        while not done.is_set():
            try:
                r = pair.get()
                if r.status != 200:
                    failures.append((r.status, r.body))
            except OSError as exc:
                failures.append(exc)
            count[0] += 1

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for generation in (2, 3, 4):
            time.sleep(0.7)
            write_secrets(pair.server_secrets, pair.ca, "foo", "httpbin", generation=generation)
            write_secrets(pair.client_secrets, pair.ca, "foo", "sleep", generation=generation)
            for proc in (pair.server, pair.client):
                wait_for(lambda p=proc, g=generation: pair.certs(p)["identity"]["generation"]
                         == f"..gen-{g}", 5, f"generation {generation}")  # fmt: skip
        time.sleep(0.7)
    finally:
        done.set()
        for t in threads:
            t.join(10)
    assert not failures, failures[:5]
    assert count[0] > 30
    assert pair.certs(pair.server)["secrets"]["rotations"] == 3


# --------------------------------------------------------------------- AuthorizationPolicy


def test_authz_deny_all_then_allow_by_principal(pair: Pair) -> None:
    pair.apply([ap("deny-all", "foo", {})])
    r = pair.get()
    assert r.status == 403 and r.body == b"RBAC: access denied"
    assert not pair.app.requests
    allow = ap("allow-sleep", "foo", {
        "selector": {"matchLabels": {"app": "httpbin"}},
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/foo/sa/sleep"]}}],
                   "to": [{"operation": {"methods": ["GET"]}}]}],
    })  # fmt: skip
    pair.apply([allow])
    assert pair.get().status == 200
    assert pair.direct().status == 403  # plaintext: no principal
    stats = pair.certs(pair.server)["stats"]
    assert stats["rbac_denied"] >= 2 and stats["rbac_allowed"] >= 1


def test_authz_when_connection_sni_and_source_namespace(pair: Pair) -> None:
    sni = "outbound_.9080_._.httpbin.foo.svc.cluster.local"
    allow = ap("by-sni", "foo", {"rules": [{
        "from": [{"source": {"namespaces": ["foo"]}}],
        "when": [{"key": "connection.sni", "values": [sni]},
                 {"key": "request.headers[x-user]", "values": ["ann*"]}],
    }]})  # fmt: skip
    pair.apply([allow])
    assert pair.get(headers={"x-user": "anna"}).status == 200
    assert pair.get(headers={"x-user": "bob"}).status == 403
    assert pair.direct(headers={"x-user": "anna"}).status == 403  # no SNI, no namespace


def test_authz_dry_run_is_not_enforced(pair: Pair) -> None:
    pair.apply([ap("deny-all", "foo", {"action": "DENY", "rules": [{}]},
                   **{"istio.io/dry-run": "true"})])  # fmt: skip
    assert pair.get().status == 200
    stats = pair.certs(pair.server)["stats"]
    assert stats["rbac_shadow_denied"] >= 1 and stats["rbac_denied"] == 0


def test_authz_malformed_policy_refuses_the_snapshot(pair: Pair) -> None:
    pair.apply([])
    bad = ap("bad", "foo", {"rules": [{"when": [{"key": "experimental.envoy.filters.x[y]",
                                                 "values": ["1"]}]}]})  # fmt: skip
    pair.version += 1
    write_snapshot(pair.mesh_dir, pair.version, [bad], [pair.endpoint()])
    wait_for(lambda: (read_status(pair.mesh_dir, "httpbin-1") or {}).get("error"), 5, "refusal")
    assert pair.get().status == 200  # the last good config (no policy) still applies


# --------------------------------------------------------------------- gateway, no identity


def test_the_gateway_originates_mtls_to_a_strict_sidecar(pair: Pair) -> None:
    from mesh.sidecar.testing import gateway_process, gateway_resource

    gw_secrets = pair.mesh_dir.parent / "pods" / "gateway" / "secrets"
    write_secrets(gw_secrets, pair.ca, "istio-system", "istio-ingressgateway-service-account")
    gateway, listen = gateway_process(pair.mesh_dir, extra=["--namespace", "istio-system",
                                                            "--secrets-dir", str(gw_secrets)])  # fmt: skip
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
          "metadata": {"name": "httpbin", "namespace": "default"},
          "spec": {"hosts": ["*"], "gateways": ["gw"],
                   "http": [{"route": [{"destination": {"host": "httpbin.foo.svc.cluster.local",
                                                        "port": {"number": 9080}}}]}]}}  # fmt: skip
    deny = ap("block", "istio-system", {
        "selector": {"matchLabels": {"istio": "ingressgateway"}}, "action": "DENY",
        "rules": [{"when": [{"key": "request.headers[x-block]", "values": ["yes"]}]}],
    })  # fmt: skip
    try:
        gateway.start()
        pair.apply([pa("default", "istio-system", "STRICT"), gateway_resource(), vs, deny])
        gateway.wait_version(pair.version)
        wait_for(lambda: _identity_loaded(gateway), 10, "gateway identity")
        r = wait_for(
            lambda: (lambda x: x if x.status == 200 else None)(
                http_request("127.0.0.1", listen, "GET", "/get", headers={XFCC: "By=forged"})
            ), 10, "gateway route",
        )  # fmt: skip
        assert r.status == 200
        seen = pair.app.requests[-1].headers[XFCC]
        assert seen.endswith("URI=spiffe://cluster.local/ns/istio-system/sa/"
                             "istio-ingressgateway-service-account")  # fmt: skip
        assert "forged" not in seen  # the gateway sanitizes what its clients send
        # An AuthorizationPolicy selecting the gateway is enforced there, before routing.
        blocked = http_request("127.0.0.1", listen, "GET", "/get", headers={"x-block": "yes"})
        assert blocked.status == 403 and blocked.body == b"RBAC: access denied"
    finally:
        gateway.stop()


def test_strict_without_an_identity_refuses_every_connection(tmp_path: Path) -> None:
    mesh_dir = tmp_path / "mesh"
    with Upstream(name="app") as app:
        server = SidecarProcess(mesh_dir, pod="plain-1", labels={"app": "plain"},
                                app_port=app.port)  # fmt: skip
        try:
            server.start()
            write_snapshot(mesh_dir, 1, [], [])
            server.wait_version(1)
            assert http_request("127.0.0.1", server.inbound_port, "GET", "/").status == 200
            write_snapshot(mesh_dir, 2, [pa("default", "istio-system", "STRICT")], [])
            server.wait_version(2)
            assert _reset(lambda: http_request("127.0.0.1", server.inbound_port, "GET", "/"))
            status = wait_for(lambda: (read_status(mesh_dir, "plain-1") or {}).get("mtls_mode"), 5,
                              "status")  # fmt: skip
            assert status.startswith("STRICT (no certificate")
        finally:
            server.stop()


def test_strict_drains_open_plaintext_connections(pair: Pair) -> None:
    with socket.create_connection(("127.0.0.1", pair.server.inbound_port), timeout=5) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nhost: httpbin\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        pair.apply([pa("default", "istio-system", "STRICT")])
        # The idle keep-alive connection is closed: plaintext is not allowed any more.
        try:
            sock.sendall(b"GET /b HTTP/1.1\r\nhost: httpbin\r\n\r\n")
            answer = sock.recv(65536)
        except OSError:
            answer = b""
        assert answer == b""
    assert [r.target for r in pair.app.requests] == ["/a"]


def test_a_pod_without_sidecar_sees_the_reset_itself(pair: Pair) -> None:
    legacy = SidecarProcess(pair.mesh_dir, pod="legacy-1", labels={"app": "legacy"},
                            extra=["--no-sidecar", "--namespace", "legacy"])  # fmt: skip
    try:
        legacy.start()
        pair.apply([pa("default", "istio-system", "STRICT")])
        legacy.wait_version(pair.version)

        def call() -> Any:
            return http_request("127.0.0.1", legacy.outbound_port, "GET",
                                "http://httpbin.foo.svc.cluster.local:9080/get")  # fmt: skip

        assert _reset(call)  # kube-proxy answers nothing itself: curl says 000
        pair.apply([])
        legacy.wait_version(pair.version)
        assert call().status == 200
    finally:
        legacy.stop()
