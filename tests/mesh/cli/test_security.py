"""meshctl describe pod and meshctl tap on a mesh directory (the tap read from a pod's admin
endpoint: here a stand-in HTTP server with the sidecar's /tap answer)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mesh.cli.meshctl import main
from mesh.lab.workloads import lab_entries, lab_workloads
from mesh.meshdir import MeshDir, RegistryRecord, atomic_write, write_json
from mesh.security.ca import MeshCA
from mesh.security.certs import make_csr, new_private_key
from mesh.security.identity import Identity
from mesh.sidecar import tap
from mesh.snapshot import topology_to_json
from tests.helpers import client_hello

SECURITY = lab_workloads(lab_entries("security")).topology


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def mesh(tmp_path: Path) -> MeshDir:
    mesh = MeshDir(tmp_path / "mesh").create()
    atomic_write(mesh.topology_file, json.dumps(topology_to_json(SECURITY)))
    (mesh.config / "strict.yaml").write_text(
        "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n"
        "metadata: {name: default, namespace: foo}\nspec: {mtls: {mode: STRICT}}\n"
    )
    return mesh


def test_describe_pod_by_name_and_namespace(
    mesh: MeshDir, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    ca = MeshCA.create(datetime.now(UTC))
    identity = Identity("foo", "httpbin")
    issued = ca.sign(make_csr(new_private_key(), identity), identity, datetime.now(UTC))
    atomic_write(mesh.cert_file("httpbin.foo"), issued.cert_chain_pem)
    code, out = run(capsys, "describe", "pod", "httpbin", "-n", "foo", "--mesh-dir", str(mesh.root))
    assert code == 0, out
    assert "Pod: httpbin.foo" in out
    assert "Workload mTLS mode: STRICT (namespace-wide, foo/default)" in out
    assert "Certificate: serial " in out
    assert "sleep.legacy -> :8000 sends plaintext [no sidecar]: FAILS: connection reset" in out


def test_describe_an_unknown_pod_lists_the_pods(
    mesh: MeshDir, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "describe", "pod", "nope", "--mesh-dir", str(mesh.root))
    assert code == 1 and "httpbin.foo" in out


class _Admin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps(tap.snapshot(tap.since_of(self.path.encode()))).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def admin() -> Iterator[int]:
    tap.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    tap.clear()


def test_tap_shows_plaintext_and_tls(
    mesh: MeshDir, admin: int, capsys: pytest.CaptureFixture[str]
) -> None:
    record = RegistryRecord(
        "httpbin.foo", "httpbin", "127.0.0.1", 8080, namespace="foo", service_account="httpbin",
        heartbeat=time.time(), admin_address="127.0.0.1", admin_port=admin,
    )  # fmt: skip
    write_json(mesh.registry_file("httpbin.foo"), record.to_json())
    tap.record(
        b"GET /headers HTTP/1.1\r\nHost: httpbin.foo:8000\r\n\r\n", ("127.0.0.1", 4000), 8080
    )
    sni = "outbound_.8000_._.httpbin.foo.svc.cluster.local"
    tap.record(client_hello(sni, ["istio-peer-exchange", "istio"]), ("127.0.0.1", 4001), 8080)
    code, out = run(capsys, "tap", "httpbin.foo", "--mesh-dir", str(mesh.root))
    assert code == 0, out
    assert "2 inbound connection(s) recorded" in out
    assert "PLAINTEXT HTTP, readable by anyone on the path: GET /headers HTTP/1.1" in out
    assert f"TLS ClientHello: the rest of the connection is encrypted; SNI {sni}" in out
    assert "ALPN istio-peer-exchange, istio" in out


def test_tap_refuses_a_pod_without_sidecar(
    mesh: MeshDir, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "tap", "sleep.legacy", "--mesh-dir", str(mesh.root))
    assert code == 1 and "has no sidecar" in out
    code, out = run(capsys, "tap", "httpbin.foo", "--mesh-dir", str(mesh.root))
    assert code == 1 and "not registered" in out
