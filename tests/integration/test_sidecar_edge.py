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
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mesh.sidecar.testing import (
    SidecarProcess,
    endpoint,
    free_port,
    gateway_process,
    gateway_resource,
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
HEADER_TIMEOUT = 2


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
    gw = gateway_resource()
    to_probe = [{"destination": {"host": "probe"}}]
    vs = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
          "metadata": {"name": "probe"},
          "spec": {"hosts": [HOST], "gateways": ["gw"],
                   "http": [{"match": [{"uri": {"exact": "/productpage"}}], "route": to_probe},
                            {"match": [{"uri": {"prefix": "/static"}}],
                             "rewrite": {"uri": "/files"}, "route": to_probe},
                            {"route": to_probe}]}}  # fmt: skip
    return [gw, vs]


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge")
    probe = start_probe()
    pod = SidecarProcess(root, pod="probe-v1", labels={"app": "probe", "version": "v1"},
                         app_port=probe.port, extra=["--header-timeout", str(HEADER_TIMEOUT)])  # fmt: skip
    write_snapshot(root, 1, gateway_resources(), [endpoint("probe-v1", "probe", pod.inbound_port)])
    gateway, listen = gateway_process(root, extra=["--header-timeout", str(HEADER_TIMEOUT)])
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


# --- finding 2: slow headers, connection cap ------------------------------------------------


@pytest.mark.parametrize("listener", ["gateway", "inbound"])
def test_a_trickled_head_is_cut_at_the_header_timeout_from_its_first_byte(edge, listener):
    """Issue 11, finding 2: a byte every 0.4 s used to restart the header timer forever.
    Now the head must be complete within the timeout (2 s here) of its first byte: 408."""
    socks = [socket.create_connection(("127.0.0.1", edge.port(listener)), timeout=10)
             for _ in range(3)]  # fmt: skip
    t0 = time.monotonic()
    answers: dict[int, bytes] = {}
    try:
        for sock in socks:
            sock.sendall(f"GET /slow HTTP/1.1\r\nHost: {HOST}\r\nX-Pad: ".encode())
            sock.setblocking(False)
        while len(answers) < len(socks) and time.monotonic() - t0 < HEADER_TIMEOUT + 6:
            time.sleep(0.4)
            for i, sock in enumerate(socks):
                if i in answers:
                    continue
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    sock.send(b"a")  # one more byte of the header value
                    continue
                except ConnectionResetError:
                    data = b"reset"
                answers[i] = data
        took = time.monotonic() - t0
    finally:
        for sock in socks:
            sock.close()
    assert len(answers) == len(socks), f"still open after {took:.1f} s: {answers}"
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers.values()), answers
    assert took < HEADER_TIMEOUT + 2.5


def test_connections_over_the_listener_cap_are_refused_and_counted(tmp_path):
    """Issue 11, finding 2: a cap on concurrent downstream connections per listener. Over it
    a connection is closed at once (Envoy's listener connection limit), counted as
    ``downstream_cx_overflow``; the connections within the cap keep working."""
    probe = start_probe()
    sc = SidecarProcess(tmp_path, app_port=probe.port, extra=["--max-connections", "5"])
    write_snapshot(tmp_path, 1, [], [])
    sc.start()
    try:
        sc.wait_version(1)
        held = [socket.create_connection(("127.0.0.1", sc.inbound_port), timeout=5)
                for _ in range(5)]  # fmt: skip
        time.sleep(0.3)  # accepted by now
        with socket.create_connection(("127.0.0.1", sc.inbound_port), timeout=5) as extra:
            extra.settimeout(5)
            try:
                assert extra.recv(4096) == b""  # closed at once, nothing read or answered
            except ConnectionResetError:
                pass
        # Within the cap, a held connection is served as usual.
        held[0].sendall(b"GET /held HTTP/1.1\r\nHost: probe\r\n\r\n")
        assert read_response(held[0]).body == b"GET /held"
        stats = sc.admin("/stats/prometheus")[1].decode()
        assert 'mesh_downstream_cx_overflow_total{listener="inbound"} 1' in stats, stats
        assert 'mesh_downstream_cx_active{listener="inbound"} 5' in stats
        for sock in held:
            sock.close()
        # Room again once they are gone.
        wait_for(lambda: http_request("127.0.0.1", sc.inbound_port, "GET", "/again").status == 200,
                 5, "a connection within the cap")  # fmt: skip
    finally:
        sc.stop()
        probe.proc.terminate()
        probe.proc.wait(10)


# --- finding 3: edge hygiene at the gateway ---------------------------------------------------


def echo(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    r = http_request("127.0.0.1", port, "GET", path, {"host": HOST, **headers})
    return r.status, (json.loads(r.body) if r.status == 200 else {"body": r.body.decode()})


def test_envoy_timeout_header_from_outside_does_not_steer_the_gateway(edge):
    """Issue 11, finding 3: ``X-Envoy-Upstream-Rq-Timeout-Ms: 1`` from the internet used to
    give 504; Envoy strips it from an edge request, so the route's own (no) timeout holds."""
    r = http_request("127.0.0.1", edge.gateway_port, "GET", "/slow/t",
                     {"host": HOST, "X-Envoy-Upstream-Rq-Timeout-Ms": "50"})  # fmt: skip
    assert r.status == 200 and r.body == b"GET /slow/t", r
    # A sidecar inside the mesh still honours it, as Envoy's sidecars do for their app.
    r = http_request("127.0.0.1", edge.pod.outbound_port, "GET", "http://probe:9080/slow/t",
                     {"X-Envoy-Upstream-Rq-Timeout-Ms": "50"})  # fmt: skip
    assert r.status == 504


def test_internal_only_headers_from_outside_are_dropped_at_the_gateway(edge):
    from mesh.sidecar.forwarding import EDGE_STRIPPED

    sent = {name: "1" for name in sorted(EDGE_STRIPPED)}
    status, seen = echo(edge.gateway_port, "/echo/strip", sent)
    assert status == 200, seen
    assert not EDGE_STRIPPED & set(seen["headers"]), seen["headers"]
    # Not on Envoy's list: passed on as any header.
    status, seen = echo(edge.gateway_port, "/echo/keep", {"x-envoy-attempt-count": "3"})
    assert seen["headers"]["x-envoy-attempt-count"] == "3"


def test_request_id_forwarded_for_and_proto_are_the_gateways(edge):
    """Envoy's edge defaults as Istio's gateway has them (use_remote_address, no trusted
    hops, preserve_external_request_id off): a fresh x-request-id for every request from
    outside, the client appended to x-forwarded-for and named in x-envoy-external-address,
    x-forwarded-proto the scheme the gateway received."""
    status, seen = echo(edge.gateway_port, "/echo/ids", {
        "x-request-id": "chosen-by-the-client", "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "https", "x-envoy-external-address": "198.51.100.1"})  # fmt: skip
    headers = seen["headers"]
    assert status == 200, seen
    assert headers["x-request-id"] not in ("", "chosen-by-the-client")
    assert "," not in headers["x-request-id"]
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-envoy-external-address"] == "127.0.0.1"
    # The gateway appends the client; the pod's sidecar appends the gateway.
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1, 127.0.0.1"
    # Inside the mesh a request id is kept (only a missing one is made).
    r = http_request("127.0.0.1", edge.pod.inbound_port, "GET", "/echo/inside",
                     {"x-request-id": "kept-inside"})  # fmt: skip
    assert json.loads(r.body)["headers"]["x-request-id"] == "kept-inside"


def test_dot_segments_are_resolved_before_matching(edge):
    """``/static/../productpage`` is ``/productpage`` (RFC 3986, Istio's default path
    normalisation): it takes the /productpage route, not the /static one, and goes upstream
    normalised."""
    r = http_request("127.0.0.1", edge.gateway_port, "GET", "/static/../productpage",
                     {"host": HOST})  # fmt: skip
    assert (r.status, r.body) == (200, b"GET /productpage")
    r = http_request("127.0.0.1", edge.gateway_port, "GET", "/static/%2e%2E/productpage",
                     {"host": HOST})  # fmt: skip
    assert (r.status, r.body) == (200, b"GET /productpage")
    # Straight to a sidecar's inbound port too, and an escaped NUL is refused.
    r = http_request("127.0.0.1", edge.pod.inbound_port, "GET", "/a/./b/../c?q=/../x")
    assert r.body == b"GET /a/c?q=/../x"
    assert (
        http_request("127.0.0.1", edge.gateway_port, "GET", "/a/%00", {"host": HOST}).status == 400
    )


def test_a_rewritten_path_keeps_the_matched_one_in_x_envoy_original_path(edge):
    status, seen = echo(edge.gateway_port, "/static/../static/echo.png", {})
    assert status == 200, seen
    assert seen["request"] == "GET /files/echo.png"
    assert seen["headers"]["x-envoy-original-path"] == "/static/echo.png"
    # Not rewritten: no such header is made.
    status, seen = echo(edge.gateway_port, "/echo/plain", {})
    assert "x-envoy-original-path" not in seen["headers"]


def test_forged_peer_metadata_from_outside_is_replaced_by_the_gateways(edge):
    """Istio's metadata exchange is between proxies: a client outside the mesh cannot pose
    as a workload. The gateway drops what the client sent and sends its own; the pod's
    sidecar reports the gateway as the source and strips the headers before the app."""
    from mesh.telemetry.istio import encode_peer

    forged = encode_peer("admin-v1", "default", {"app": "admin", "version": "v1"}, "admin")
    status, seen = echo(edge.gateway_port, "/echo/forged", {
        "x-envoy-peer-metadata": forged, "x-envoy-peer-metadata-id": "sidecar~1.2.3.4~x~y"})  # fmt: skip
    assert status == 200, seen
    assert not any(h.startswith("x-envoy-peer-metadata") for h in seen["headers"])
    text = edge.pod.admin("/stats/prometheus")[1].decode()
    assert 'source_workload="admin-v1"' not in text
    assert re.search(r'reporter="destination",source_workload="istio-ingressgateway"', text)
