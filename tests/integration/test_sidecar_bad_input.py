"""Hostile and broken clients against a real sidecar: each gets Envoy's answer, none wedges
or crashes the process (checked after every case by a normal request)."""

from __future__ import annotations

import socket
import time

import pytest

from mesh.sidecar.testing import (
    SidecarProcess,
    Upstream,
    endpoint,
    http_request,
    send_raw,
    wait_for,
    write_snapshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    root = tmp_path_factory.mktemp("mesh")
    with Upstream(name="app") as app:
        write_snapshot(root, 1, [], [endpoint("a", "svc", app.port, version="v1")])
        sc = SidecarProcess(root, app_port=app.port, extra=["--header-timeout", "1"]).start()
        sc.wait_version(1)
        yield sc
        sc.stop()


def still_serving(sc: SidecarProcess) -> None:
    assert sc.alive()
    r = http_request("127.0.0.1", sc.outbound_port, "GET", "http://svc:9080/ok")
    assert r.status == 200
    r = http_request("127.0.0.1", sc.inbound_port, "GET", "/ok")
    assert r.status == 200


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("listener", ["inbound", "outbound"])
@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("malformed request line", b"GARBAGE\r\n\r\n", 400),
        ("bad method token", b"G(T / HTTP/1.1\r\nhost: x\r\n\r\n", 400),
        ("bad version", b"GET / HTTP/9.z\r\nhost: x\r\n\r\n", 400),
        ("header without colon", b"GET / HTTP/1.1\r\nhost x\r\n\r\n", 400),
        ("oversized header value", b"GET / HTTP/1.1\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        ("too many headers", b"GET / HTTP/1.1\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(150))
         + b"\r\n", 431),
        ("oversized url", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 431),
        ("invalid chunk size", b"POST / HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n"
         b"zz\r\nhello\r\n0\r\n\r\n", 400),
        ("chunk without CRLF", b"POST / HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n"
         b"5\r\nhelloXX0\r\n\r\n", 400),
        ("CONNECT", b"CONNECT svc:443 HTTP/1.1\r\nhost: svc:443\r\n\r\n", 400),
        ("content-length and chunked", b"POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\n"
         b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ],
)  # fmt: skip
def test_bad_request_gets_an_error_and_close(sidecar, listener, name, data, status):
    port = sidecar.inbound_port if listener == "inbound" else sidecar.outbound_port
    raw = send_raw(port, data)
    assert status_of(raw) == status, (name, raw[:200])
    assert b"connection: close" in raw.lower()
    still_serving(sidecar)


def test_slow_headers_hit_the_header_timeout(sidecar):
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", sidecar.outbound_port), timeout=10) as s:
        s.sendall(b"GET http://svc:9080/slow HTTP/1.1\r\nhost: sv")
        raw = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            raw += chunk
    took = time.monotonic() - t0
    assert status_of(raw) == 408
    assert 0.9 <= took < 4
    still_serving(sidecar)


def test_silent_connection_is_closed(sidecar):
    with socket.create_connection(("127.0.0.1", sidecar.inbound_port), timeout=10) as s:
        t0 = time.monotonic()
        assert s.recv(4096).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - t0 < 4


def test_many_abandoned_connections_do_not_wedge(sidecar):
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", sidecar.outbound_port))
        s.sendall(b"GET http://svc:9080/ HTTP/1.1\r\n")
        socks.append(s)
    still_serving(sidecar)
    for s in socks:
        s.close()
    # A client that disappears while its request is upstream.
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", sidecar.outbound_port))
        s.sendall(b"POST http://svc:9080/ HTTP/1.1\r\nhost: svc\r\ncontent-length: 100\r\n\r\nab")
        s.close()
    still_serving(sidecar)


def test_pipelined_requests_answered_in_order(sidecar):
    data = (
        b"".join(
            f"GET http://svc:9080/p{i} HTTP/1.1\r\nhost: svc:9080\r\n\r\n".encode()
            for i in range(5)
        )
        + b"GET http://svc:9080/last HTTP/1.1\r\nhost: svc:9080\r\nconnection: close\r\n\r\n"
    )
    raw = send_raw(sidecar.outbound_port, data)
    order = [raw.find(f"GET /p{i}".encode()) for i in range(5)] + [raw.find(b"GET /last")]
    assert all(pos > 0 for pos in order) and order == sorted(order)


def test_expect_100_continue(sidecar):
    with socket.create_connection(("127.0.0.1", sidecar.outbound_port), timeout=5) as s:
        s.sendall(b"POST http://svc:9080/e HTTP/1.1\r\nhost: svc:9080\r\ncontent-length: 4\r\n"
                  b"expect: 100-continue\r\n\r\n")  # fmt: skip
        assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"body")
        wait_for(lambda: True)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")


def test_http10_client_gets_close_delimited_answer(sidecar):
    raw = send_raw(sidecar.outbound_port, b"GET http://svc:9080/old HTTP/1.0\r\nhost: svc\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"GET /old")
