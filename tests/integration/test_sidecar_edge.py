"""The sidecar as an edge (issue 11), against real processes on loopback: a gunicorn app
(``probe_app``) behind a pod's sidecar, and an ingress gateway routing to that pod.

- Request smuggling: an upgrade request that declares a body it never sends must not leave a
  pooled upstream connection owing those bytes (the next client's request would be eaten as
  that body, and a header value of it run as a request of its own).
- Slow headers: a request head must arrive within the header timeout from its first byte,
  however the bytes are trickled.
- A listener refuses connections over its cap (closed at once, counted), as Envoy's listener
  connection limit does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mesh.sidecar.testing import (
    SidecarProcess,
    endpoint,
    free_port,
    http_request,
    read_response,
    wait_for,
    write_snapshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
HOST = "bookinfo.local"
# What the smuggled request would do on the lab: productpage goes unready.
SMUGGLED = "POST /health/toggle?ready=false HTTP/1.1"


@dataclass
class Probe:
    """gunicorn serving ``probe_app`` on a loopback port."""

    port: int
    proc: subprocess.Popen[bytes]

    def seen(self) -> list[str]:
        r = http_request("127.0.0.1", self.port, "GET", "/__seen")
        assert r.status == 200, r
        return list(json.loads(r.body))


@dataclass
class Edge:
    probe: Probe
    pod: SidecarProcess
    gateway: SidecarProcess
    gateway_port: int

    def port(self, listener: str) -> int:
        return self.gateway_port if listener == "gateway" else self.pod.inbound_port


def start_probe() -> Probe:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in ("HTTP_PROXY", "http_proxy"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--threads", "4",
         "--workers", "1", "--bind", f"127.0.0.1:{port}", "--keep-alive", "300",
         "tests.integration.probe_app:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    probe = Probe(port, proc)

    def up() -> bool:
        try:
            return bool(probe.seen() is not None)
        except OSError:
            return False

    wait_for(up, 20, "gunicorn probe app")
    return probe


def gateway_resources() -> list[dict]:
    gw = {"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway",
          "metadata": {"name": "gw"},
          "spec": {"selector": {"istio": "ingressgateway"},
                   "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                                "hosts": ["*"]}]}}  # fmt: skip
    vs = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
          "metadata": {"name": "probe"},
          "spec": {"hosts": [HOST], "gateways": ["gw"],
                   "http": [{"route": [{"destination": {"host": "probe"}}]}]}}  # fmt: skip
    return [gw, vs]


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge")
    probe = start_probe()
    pod = SidecarProcess(root, pod="probe-v1", labels={"app": "probe", "version": "v1"},
                         app_port=probe.port)  # fmt: skip
    write_snapshot(root, 1, gateway_resources(), [endpoint("probe-v1", "probe", pod.inbound_port)])
    listen = free_port()
    gateway = SidecarProcess(root, pod="istio-ingressgateway", gateway=True,
                             labels={"istio": "ingressgateway"},
                             extra=["--gateway-port-map", f"8080:{listen}"])  # fmt: skip
    pod.start()
    gateway.start(wait_ready=True)
    pod.wait_version(1)
    try:
        yield Edge(probe, pod, gateway, listen)
    finally:
        gateway.stop()
        pod.stop()
        probe.proc.terminate()
        probe.proc.wait(10)


def exchange(port: int, data: bytes, linger: float = 1.0) -> bytes:
    """Send ``data`` on a new connection, read what comes back for ``linger`` seconds (or
    until the server closes), then close, as ``nc -q1`` does."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        sock.settimeout(linger)
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


UPGRADES = ["websocket", "WebSocket", "h2c", "foo/1.0", "websocket, h2c"]


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("upgrade", UPGRADES)
@pytest.mark.parametrize("listener", ["gateway", "inbound"])
def test_upgrade_request_with_an_unsent_body_smuggles_nothing(edge, listener, upgrade, framing):
    """Issue 11, finding 1: the two-request sequence of the report, with every Upgrade value
    and with chunked framing too. The second client's request reaches the app whole and
    answered as itself; no request hidden in its header value ever runs."""
    port = edge.port(listener)
    case = f"{listener}-{upgrade}-{framing}".replace("/", "_").replace(", ", "+")
    victim = f"/probe/{case}"
    # Sized so that an app eating the next request's first bytes as this body lands exactly
    # on the value of its X-A header (the sidecar forwards the host line first).
    owed = len(f"GET {victim} HTTP/1.1\r\nhost: {HOST}\r\nx-a: ")
    body_header = f"Content-Length: {owed}" if framing == "length" else "Transfer-Encoding: chunked"
    before = len(edge.probe.seen())
    exchange(port, (f"GET /api/v1/products HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\n"
                    f"Upgrade: {upgrade}\r\n{body_header}\r\n\r\n").encode())  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {victim} HTTP/1.1\r\nHost: {HOST}\r\nX-A: {SMUGGLED}\r\n\r\n".encode())
        answer = read_response(sock)
    seen = edge.probe.seen()[before:]
    assert not [line for line in seen if "/health/toggle" in line], seen
    assert (answer.status, answer.body) == (200, f"GET {victim}".encode()), (answer, seen)


def test_smuggling_sequence_through_both_hops_leaves_the_app_in_step(edge):
    """After every case above, plain keep-alive traffic through both hops is answered in
    order, each request by its own response."""
    with socket.create_connection(("127.0.0.1", edge.gateway_port), timeout=10) as sock:
        for i in range(20):
            sock.sendall(f"GET /after/{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            r = read_response(sock)
            assert (r.status, r.body) == (200, f"GET /after/{i}".encode())
