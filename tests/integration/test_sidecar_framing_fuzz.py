"""Differential fuzzing of HTTP/1.1 framing through a real sidecar (issue 11).

Random requests (hypothesis) go through a sidecar's inbound listener and through an ingress
gateway to a raw capture server: a real asyncio server in this process that parses what it
receives with h11, an HTTP/1.1 implementation independent of the proxy's llhttp. For every
request the proxy either refuses it (a local reply, nothing reaches the capture server) or
forwards bytes that h11 parses as exactly one request with the same method, the same
(normalised) target and the same body; and the next request on the client's connection is
answered as itself, or not at all if the proxy closed the connection. The capture server
never sees a request nobody sent, nor bytes it cannot parse.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.routing.paths import normalize_path
from mesh.sidecar.testing import (
    SidecarProcess,
    endpoint,
    gateway_process,
    gateway_resource,
    write_snapshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

HOST = "cap.local"


# --- the capture server -----------------------------------------------------------------------


@dataclass
class Captured:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)


class Capture:
    """An asyncio HTTP/1.1 server on its own thread; h11 parses, every request is recorded and
    answered ``200 cap <n>`` with ``x-capture: <n>`` (n = its index in ``records``)."""

    def __init__(self) -> None:
        self.records: list[Captured] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.port = int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        current: Captured | None = None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                    continue
                if isinstance(event, h11.Request):
                    current = Captured(event.method.decode(), event.target.decode("latin-1"),
                                       [(n.decode(), v.decode("latin-1"))
                                        for n, v in event.headers])  # fmt: skip
                elif isinstance(event, h11.Data):
                    assert current is not None
                    current.body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert current is not None
                    with self.lock:
                        n = len(self.records)
                        self.records.append(current)
                    body = f"cap {n}".encode()
                    out = conn.send(h11.Response(status_code=200, headers=[
                        ("content-length", str(len(body))), ("x-capture", str(n))]))  # fmt: skip
                    if current.method != "HEAD":
                        out += conn.send(h11.Data(data=body))
                    out += conn.send(h11.EndOfMessage())
                    writer.write(out)
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                        break
                    conn.start_next_cycle()
                    current = None
                elif isinstance(event, h11.ConnectionClosed):
                    break
        except h11.RemoteProtocolError as exc:
            with self.lock:
                self.errors.append(f"{exc!r} after {len(self.records)} requests")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


# --- requests -----------------------------------------------------------------------------------


@dataclass
class Fuzzed:
    """One generated request: its bytes (in the pieces they are sent in) and what a faithful
    forward looks like at the capture server."""

    method: str
    target: str
    body: bytes
    pieces: list[bytes]
    tricks: list[str]
    closes: bool  # the client asked for the connection to end after it

    @property
    def expected_body(self) -> bytes:
        # A WebSocket upgrade has no HTTP body: what follows its head waits for a 101.
        return b"" if "websocket" in self.tricks else self.body


SEGMENTS = ["x", "y1", "a%20b", "~u", "%41", ".", "..", "%2e", "%2E%2e", "s;p=1", "c,d"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PURGE"]
HEADER_NAMES = ["x-a", "x-b", "accept", "user-agent", "x-trace", "cookie"]
VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)


@st.composite
def requests(draw: st.DrawFn, fid: int) -> Fuzzed:
    method = draw(st.sampled_from(METHODS))
    suffix = draw(st.lists(st.sampled_from(SEGMENTS), max_size=3))
    if suffix.count("..") + suffix.count("%2E%2e") > 2:
        suffix = [s for s in suffix if s not in ("..", "%2E%2e")]
    target = f"/f{fid}/a/b/" + "/".join(suffix)
    if draw(st.booleans()):
        target += "?q=" + draw(st.sampled_from(["1", "/../x", "%2e%2e", "a&b=2", ""]))
    body = draw(st.binary(max_size=3000)) if draw(st.booleans()) else b""
    framing = draw(st.sampled_from(["length", "chunked", "none"])) if body else "none"
    if framing == "none":
        body = b""
    tricks: list[str] = []
    headers = [("Host", HOST)]
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=4)):
        headers.append((name, draw(VALUE)))
    version = "HTTP/1.1"
    if draw(st.integers(0, 9)) == 0:
        version = "HTTP/1.0"
        tricks.append("http10")
    trick = draw(st.sampled_from(
        ["none"] * 6 + ["websocket", "h2c", "upgrade-other", "expect", "te-variant",
                        "cl-leading-zeros", "cl-duplicate", "cl-and-te", "connect", "nul-path",
                        "close"]))  # fmt: skip
    if trick == "websocket" and framing == "length":
        framing = "chunked"  # a length is owed until the 101 that never comes: see Fuzzed
    if trick != "none":
        tricks.append(trick)
    if trick == "websocket":
        headers += [("Connection", "Upgrade"), ("Upgrade", draw(st.sampled_from(
            ["websocket", "WebSocket"]))), ("Sec-WebSocket-Version", "13")]  # fmt: skip
    elif trick == "h2c":
        headers += [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                    ("HTTP2-Settings", "AAMAAABkAAQAAP__")]  # fmt: skip
    elif trick == "upgrade-other":
        headers += [
            ("Connection", "Upgrade"),
            ("Upgrade", draw(st.sampled_from(["foo/1", "websocket, h2c", "TLS/1.2"]))),
        ]
    elif trick == "expect" and body:
        headers.append(("Expect", "100-continue"))
    elif trick == "connect":
        method, target = "CONNECT", f"{HOST}:443"
    elif trick == "nul-path":
        target += "/%00"
    elif trick == "close":
        headers.append(("Connection", "close"))
    if framing == "length":
        length = str(len(body))
        if trick == "cl-leading-zeros":
            length = "00" + length
        headers.append(("Content-Length", length))
        if trick == "cl-duplicate":
            headers.append(("Content-Length", length))
        if trick == "cl-and-te":
            headers.append(("Transfer-Encoding", "chunked"))
    elif framing == "chunked":
        te = "chunked"
        if trick == "te-variant":
            te = draw(st.sampled_from(["Chunked", "gzip, chunked", "identity", "chunked, gzip"]))
        headers.append(("Transfer-Encoding", te))
        if trick == "cl-and-te":
            headers.append(("Content-Length", str(len(body))))
    draw(st.randoms()).shuffle(headers)
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    raw = head.encode("latin-1") + b"\r\n"
    if framing == "length":
        raw += body
    elif framing == "chunked":
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        chunks = [body[a:b] for a, b in itertools.pairwise([0, *cuts, len(body)]) if b > a]
        for piece in chunks:
            ext = ";x=1" if draw(st.booleans()) else ""
            raw += b"%x%s\r\n%s\r\n" % (len(piece), ext.encode(), piece)
        raw += b"0\r\n" + (b"x-trailer: 1\r\n" if draw(st.booleans()) else b"") + b"\r\n"
    splits = sorted(draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=3)))
    pieces = [raw[a:b] for a, b in itertools.pairwise([0, *splits, len(raw)]) if b > a]
    closes = trick == "close" or version == "HTTP/1.0"
    return Fuzzed(method, target, body, pieces, tricks, closes)


# --- the client side ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Reader:
    """Responses off one socket, buffered (a pipelined response is never lost)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _more(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def response(self, method: str) -> Reply | None:
        """The next final response (interim 1xx skipped), or None if the connection ended."""
        while True:
            while b"\r\n\r\n" not in self.buf:
                if not self._more():
                    return None
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue
            if method == "HEAD" or status in (204, 304):
                return Reply(status, headers, b"")
            if "content-length" in headers:
                n = int(headers["content-length"])
                while len(self.buf) < n:
                    if not self._more():
                        return None
                body, self.buf = self.buf[:n], self.buf[n:]
                return Reply(status, headers, body)
            assert "chunked" in headers.get("transfer-encoding", ""), headers
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self._more():
                        return None
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._more():
                        return None
                body += self.buf[:size]
                self.buf = self.buf[size + 2 :]
                if size == 0:
                    return Reply(status, headers, body)


# --- the property ------------------------------------------------------------------------------


@dataclass
class Rig:
    capture: Capture
    ports: dict[str, int]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("fuzz")
    capture = Capture()
    pod = SidecarProcess(root, pod="cap-v1", labels={"app": "cap", "version": "v1"},
                         app_port=capture.port)  # fmt: skip
    gw = gateway_resource()
    vs = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
          "metadata": {"name": "cap"},
          "spec": {"hosts": [HOST], "gateways": ["gw"],
                   "http": [{"route": [{"destination": {"host": "cap"}}]}]}}  # fmt: skip
    # The gateway forwards straight to the capture server: each hop is fuzzed alone.
    write_snapshot(root, 1, [gw, vs], [endpoint("cap-v1", "cap", capture.port)])
    gateway, listen = gateway_process(root)
    pod.start()
    gateway.start(wait_ready=True)
    pod.wait_version(1)
    try:
        yield Rig(capture, {"inbound": pod.inbound_port, "gateway": listen})
    finally:
        gateway.stop()
        pod.stop()
        capture.close()


IDS = itertools.count()


@pytest.mark.parametrize("listener", ["inbound", "gateway"])
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_forwarded_exactly_or_refused_and_the_next_request_unaffected(rig, listener, data):
    fid = next(IDS)
    req = data.draw(requests(fid))
    pipelined = data.draw(st.booleans())
    capture = rig.capture
    with capture.lock:
        before = len(capture.records)
    nxt = f"GET /next/{fid} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", rig.ports[listener]), timeout=5) as sock:
        reader = Reader(sock)
        for piece in req.pieces:
            sock.sendall(piece)
        if pipelined:
            try:
                sock.sendall(nxt)
            except OSError:
                pass
        first = reader.response(req.method)
        second = None
        if first is not None and not req.closes and "connection: close" not in str(first.headers):
            if not pipelined:
                try:
                    sock.sendall(nxt)
                except OSError:
                    pass
            second = reader.response("GET")
    with capture.lock:
        new = capture.records[before:]
        errors = list(capture.errors)
    mine = [r for r in new if r.target.startswith(f"/f{fid}/") or r.target == f"{HOST}:443"]
    nexts = [r for r in new if r.target == f"/next/{fid}"]
    context = (req.tricks, req.pieces[:1], first, second, [(r.method, r.target) for r in new])
    assert not errors, (errors, context)
    assert len(mine) + len(nexts) == len(new), ("a request nobody sent", context)
    assert first is not None, ("no answer", context)
    if "x-capture" in first.headers:
        # Forwarded: exactly one request, the same method, target and body.
        assert len(mine) == 1, context
        (got,) = mine
        assert capture.records[int(first.headers["x-capture"])] is got, context
        assert (got.method, got.target) == (req.method, normalize_path(req.target)), context
        assert bytes(got.body) == req.expected_body, context
    else:
        # Refused by the proxy: nothing of it reached the upstream.
        assert first.status >= 400 and not mine, context
        assert req.tricks, ("a plain request refused", context)
    if second is not None:
        assert second.headers.get("x-capture") is not None, context
        assert len(nexts) == 1 and second.body == b"cap %d" % capture.records.index(nexts[0])
    else:
        assert not nexts, context
