"""HTTP/1.1 towards clients: ``Downstream``, an ``asyncio.Protocol`` with an httptools request
parser, and ``ConnTracker``, what a listener's connections report to.

``Downstream`` parses bytes into ``Exchange``s and runs them strictly one at a time in arrival
order (HTTP/1.1 pipelining), each through the listener's ``handler``. It enforces the header
size / count limits (431), turns parser errors into 400, and lets the sidecar's
once-a-second sweeper close connections whose request head is not complete within the header
timeout of its first byte (slow-loris, however the bytes are trickled) or that sit idle too
long. A listener over its connection cap closes a new connection at once (Envoy's listener
connection limit, ``downstream_cx_overflow``).

Framing, as Envoy's HTTP/1 codec: a request's body is framed by its Content-Length or by
chunked coding, and Transfer-Encoding other than ``chunked`` is 501. An upgrade request
(``Connection: upgrade`` + ``Upgrade``) has no HTTP body: what follows its head belongs to the
new protocol. ``websocket`` (the one upgrade Istio enables) becomes a tunnel once the upstream
answers 101; its head goes on with the Content-Length it declared, without Transfer-Encoding,
and the bytes after it wait for the 101 (never sent on a refused upgrade). ``h2c`` is ignored
(Envoy does not support it): the request goes on as HTTP/1.1, its body read by its length.
Any other upgrade is refused with 403 (``upgrade_failed``). A connection whose request was an
upgrade is closed after it.

Nothing here knows about routing: that is ``mesh.sidecar.pipeline``. The per-request cost matters (the
sidecar sits on every hop), so these classes use ``__slots__``, precomputed byte strings and no
per-request timers.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.framing import (
    CHUNKED,
    CONTINUE,
    LENGTH,
    NO_BODY,
    nodelay,
    reset_transport,
)

# Envoy's defaults: max_request_headers_kb = 60, max_headers_count = 100.
MAX_HEADER_BYTES = 60 * 1024
MAX_HEADERS = 100

_METHODS: dict[bytes, str] = {
    m.encode(): m
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}


class _HeaderLimit(Exception):
    """Raised from a parser callback when the request head is too large (431)."""


class _Refused(Exception):
    """Raised from a parser callback to end parsing: the request was answered already."""


Handler = Callable[["Exchange"], None]
"""Starts an exchange; synchronous (it spawns a coroutine itself when it must wait)."""


class Downstream(asyncio.Protocol):
    """One client connection: parses requests and runs them in order through ``handler``."""

    __slots__ = (
        "handler",
        "server",
        "transport",
        "parser",
        "peer",
        "peer_port",
        "cur",
        "active",
        "queue",
        "hdr_bytes",
        "hdr_count",
        "reading_headers",
        "ticks",
        "closed",
        "write_paused",
        "read_paused",
        "port",
        "pending_error",
        "to_start",
        "corked",
        "wbuf",
        "upgrading",
        "tunnel",
        "head_ticks",
        "raw_left",
        "raw_ex",
        "tls",
    )

    def __init__(self, handler: Handler, server: ConnTracker, port: int) -> None:
        self.handler = handler
        self.server = server
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.peer_port = 0
        self.cur: Exchange | None = None
        self.active: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.hdr_bytes = 0
        self.hdr_count = 0
        # A fresh connection owes us a request head: it is timed like one (slow-loris).
        self.reading_headers = True
        self.ticks = 0
        self.closed = False
        self.write_paused = False
        self.read_paused = False
        self.pending_error: tuple[int, bytes] | None = None
        # An exchange whose head was parsed in the current read; started once the read is
        # parsed, so that a body that came along is buffered and goes out in one write.
        self.to_start: Exchange | None = None
        # While an upstream connection's read is being handled, writes to this client are
        # collected and go out in one ``write`` at its end (``uncork``): the response then
        # leaves after the proxy's own bookkeeping for it (telemetry, access log, pool), so
        # the woken client does not preempt that work on a shared core, and a chunked
        # body's last chunk shares the syscall of the data before it.
        self.corked = False
        self.wbuf: list[bytes] = []
        # A WebSocket upgrade request whose head was just parsed, and, once the parser has
        # stopped after it, the exchange that owns the connection's bytes from then on
        # (no more HTTP on this connection).
        self.upgrading: Exchange | None = None
        self.tunnel: Exchange | None = None
        # Sweeper periods since the first byte of the request head being read (the header
        # timeout is a deadline from there, not from the last byte: a trickle never resets
        # it). ``ticks`` counts periods since the last byte, for the idle timeout.
        self.head_ticks = 0
        # The body of an h2c upgrade request, which the parser took for the new protocol's
        # bytes: read here by its Content-Length (``raw_left`` bytes owed to ``raw_ex``).
        self.raw_left = 0
        self.raw_ex: Exchange | None = None
        # The verified mTLS peer (``mesh.sidecar.secure.PeerInfo``); None: plaintext.
        self.tls: Any = None

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        if server.refusing:
            # Plaintext under STRICT on a proxy without a certificate: refused at the
            # connection with a reset, as Envoy does (``mesh.sidecar.acceptor``).
            server.refused += 1
            self.closed = True
            reset_transport(transport)
            return
        if len(server.conns) >= server.max_connections:
            # Over the listener's cap: closed at once, before reading a byte (Envoy's
            # listener connection limit; counted as downstream_cx_overflow).
            server.overflows += 1
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]  # a stream transport
            return
        nodelay(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = peer[0]
            self.peer_port = peer[1]
        server.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.conns.discard(self)
        active = self.active
        if active is not None and active.tunnel_open:
            # A relayed WebSocket ends with its client: the upstream side is closed after
            # what is in flight to it.
            sink = active.sink
            if sink is not None:
                sink.close()
            active.close_tunnel()
        elif active is not None and not active.finished:
            # The client went away mid-exchange: Envoy's DC (downstream connection
            # termination). The pipeline sees ``closed`` and stops.
            active.add_flag("DC")
            sink = active.sink
            if sink is not None:
                sink.downstream_gone()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        self.ticks = 0
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.tunnel_in(data)
            return
        if self.pending_error is not None:
            return
        if self.raw_left:
            data = self._raw_body(data)
        try:
            if data:
                self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            upgrading = self.upgrading
            if upgrading is not None:
                # A WebSocket upgrade (Istio allows it on every route): what follows the
                # head is the new protocol's, never HTTP again.
                self.upgrading = None
                self.tunnel = upgrading
                if offset < len(data):
                    upgrading.tunnel_in(data[offset:])
            elif self.pending_error is None and offset < len(data):
                # An h2c offer goes on as plain HTTP/1.1 (its body first, by its length);
                # any other upgrade and CONNECT were refused already.
                self.data_received(data[offset:])
                return  # that call started what it parsed
        except httptools.HttpParserCallbackError as exc:
            if self.pending_error is None:
                self._fail(431 if isinstance(exc.__context__, _HeaderLimit) else 400, b"")
        except httptools.HttpParserError:
            if self.pending_error is None:
                self._fail(400, b"")
        ex = self.to_start
        if ex is not None:
            self.to_start = None
            self._dispatch(ex)

    def _raw_body(self, data: bytes) -> bytes:
        """Feed the owed h2c request body from ``data``; return what follows it."""
        ex = self.raw_ex
        take = self.raw_left
        body = data[:take]
        self.raw_left = take - len(body)
        if ex is not None:
            ex._on_body(body)
            if not self.raw_left:
                self.raw_ex = None
                ex._on_complete()
        return data[take:]

    def eof_received(self) -> bool | None:
        # The client closed its side: as Envoy's HTTP/1 codec does, take it as the end of
        # the connection (an exchange in flight is reset, DC), not as a half-close.
        return None

    def pause_writing(self) -> None:
        self.write_paused = True
        active = self.active
        if active is not None and active.sink is not None:
            active.sink.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        active = self.active
        if active is not None and active.sink is not None:
            active.sink.resume_reading()

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.reading_headers = True
        self.head_ticks = 0
        self.hdr_bytes = 0
        self.hdr_count = 0
        ex = Exchange(self)
        ex.start = time.monotonic()
        self.cur = ex

    def on_url(self, url: bytes) -> None:
        self.hdr_bytes += len(url)
        if self.hdr_bytes > MAX_HEADER_BYTES:
            raise _HeaderLimit
        ex = self.cur
        assert ex is not None
        ex.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.hdr_bytes += len(name) + len(value) + 4
        self.hdr_count += 1
        if self.hdr_bytes > MAX_HEADER_BYTES or self.hdr_count > MAX_HEADERS:
            raise _HeaderLimit
        if self.reading_headers:  # else a trailer of a chunked body: not forwarded (Envoy)
            ex = self.cur
            assert ex is not None
            ex.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.reading_headers = False
        ex = self.cur
        assert ex is not None
        parser = self.parser
        raw = parser.get_method()
        method = _METHODS.get(raw)
        if method is None:
            method = raw.decode("ascii", "replace")
        ex.method = method
        ex.http11 = parser.get_http_version() == "1.1"
        ex.keep_alive = parser.should_keep_alive()
        hdict: dict[str, str] = {}
        for name, value in ex.headers:
            key = name.decode("latin-1")
            sval = value.decode("latin-1")
            if key in hdict:
                hdict[key] = f"{hdict[key]}, {sval}"
            else:
                hdict[key] = sval
        framing = NO_BODY
        te = hdict.get("transfer-encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                # Envoy's codec: a transfer coding it does not implement is 501.
                self._refuse(501)
            framing = CHUNKED
        else:
            cl = hdict.get("content-length")
            if cl is not None and cl.strip() != "0":
                framing = LENGTH
        ex.hdict = hdict
        ex.req_framing = framing
        if method == "CONNECT":
            # No tunnelling in this data plane.
            self._refuse(400)
        if parser.should_upgrade():
            upgrade = hdict.get("upgrade", "")
            token = upgrade.strip().lower()
            if token == "websocket":
                ex.upgrade = upgrade.encode("latin-1")
                self.upgrading = ex
                if framing == CHUNKED:
                    # Envoy strips Transfer-Encoding from an upgrade request: the bytes that
                    # follow are the new protocol's, relayed as they are after the 101.
                    ex.req_framing = NO_BODY
            elif token == "h2c":
                # Envoy ignores an h2c offer (the Upgrade and HTTP2-Settings headers are
                # hop-by-hop and dropped) and reads the request as HTTP/1.1, body included.
                # llhttp took the head for the last HTTP bytes, so its body is read here.
                if framing == CHUNKED:
                    self._refuse(400)  # a length this proxy cannot find without the parser
                elif framing == LENGTH:
                    self.raw_left = int(cl)  # type: ignore[arg-type]  # llhttp checked it
                    self.raw_ex = ex
            else:
                # Istio enables only the websocket upgrade: Envoy answers any other with 403.
                self._refuse(403)
        expect = hdict.get("expect")
        if expect is not None and "100-continue" in expect.lower() and framing != NO_BODY:
            # Answer the client's Expect ourselves (the header is not forwarded), once this
            # request is the one running: never inside another exchange's response.
            if self.active is None:
                self.write(CONTINUE)
            else:
                ex.continue_owed = True
        if self.active is None:
            self.active = ex
            self.to_start = ex
        else:
            self.queue.append(ex)
            self.pause()

    def _refuse(self, status: int) -> None:
        """A request head this proxy will not run: answered with ``status`` (after the running
        exchange) and the connection closed; the parser stops here."""
        self.cur = None
        self._fail(status, b"")
        raise _Refused

    def on_body(self, body: bytes) -> None:
        ex = self.cur
        if ex is not None:
            ex._on_body(body)

    def on_message_complete(self) -> None:
        ex = self.cur
        if ex is not None and not self.raw_left:  # (an h2c body is still owed)
            ex._on_complete()
        self.cur = None

    # --- running exchanges ---------------------------------------------------------------

    def _dispatch(self, ex: Exchange) -> None:
        if ex.finished:
            return
        try:
            self.handler(ex)
        except Exception as exc:  # a bug must cost one request, never the sidecar
            self.server.on_handler_error(exc)
            if not ex.finished:
                if ex.started:
                    ex.abort()
                else:
                    ex.reply(500, b"internal proxy error", close=True)

    def exchange_finished(self, ex: Exchange) -> None:
        self.server.on_exchange_done(ex)
        if ex is not self.active:
            return
        self.active = None
        if ex.sink is not None:
            ex.sink = None
        transport = self.transport
        if self.closed or transport is None:
            return
        if not ex.keep_alive or not ex.request_done or self.tunnel is not None:
            # The client's body was not read to its end (a local reply before the body
            # arrived, say), or it was an upgrade (tunnel over, or refused): the
            # connection's framing is lost, close it.
            self.uncork()
            transport.close()
            self.closed = True
            return
        if self.queue:
            nxt = self.queue.popleft()
            if not self.queue:
                self.resume()
            self.active = nxt
            if nxt.continue_owed:
                self.write(CONTINUE)
            self._dispatch(nxt)
            return
        if self.pending_error is not None:
            status, body = self.pending_error
            self._reply_error(status, body)
            return
        # Idle from here; a head already begun behind this exchange is timed from now.
        self.ticks = 0
        self.head_ticks = 0

    def _fail(self, status: int, body: bytes) -> None:
        """A request that cannot be parsed: answer (after the running exchange) and close."""
        self.pending_error = (status, body)
        active = self.active
        if active is None:
            self._reply_error(status, body)
        elif active is self.cur:
            # The running exchange's own body is broken (bad chunking): it cannot go on.
            sink = active.sink
            if sink is not None:
                sink.downstream_gone()
            self.server.on_bad_request(active, status)
            active.reply(status, body, close=True)

    def _reply_error(self, status: int, body: bytes) -> None:
        ex = Exchange(self)
        ex.start = time.monotonic()
        ex.keep_alive = False
        ex.request_done = True
        self.active = ex
        self.server.on_bad_request(ex, status)
        ex.reply(status, body, close=True)
        if self.transport is not None:
            self.uncork()
            self.transport.close()
        self.closed = True

    # --- I/O helpers ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not self.closed:
            if self.corked:
                self.wbuf.append(data)
            else:
                transport.write(data)

    def uncork(self) -> None:
        """Write what was collected while corked, in one ``write``."""
        self.corked = False
        buf = self.wbuf
        if buf:
            self.wbuf = []
            transport = self.transport
            if transport is not None and not self.closed:
                transport.write(buf[0] if len(buf) == 1 else b"".join(buf))

    def abort(self) -> None:
        transport = self.transport
        self.closed = True
        self.corked = False
        self.wbuf = []
        if transport is not None:
            transport.abort()

    def pause(self) -> None:
        if not self.read_paused and self.transport is not None and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.read_paused and self.transport is not None and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    def tick(self, header_timeout: int, idle_timeout: int) -> None:
        """Called once a second by the sweeper: close stalled or idle connections.

        The header timeout runs from the first byte of the request head (or from the accept,
        for a connection that owes its first head), as Envoy's ``request_headers_timeout``;
        the idle timeout from the last byte. ``n - 1`` whole sweeper periods have passed when
        a counter reads ``n``: a connection is never cut before its timeout, and at most a
        second after it (a connection accepted just before a sweep must not be taken for one
        that stalled for a period)."""
        self.ticks += 1
        self.head_ticks += 1
        if self.active is not None:
            return
        if self.reading_headers:
            if self.head_ticks > header_timeout:
                # Slow headers: Envoy's request_headers_timeout answers 408 and closes.
                self.pending_error = (408, b"")
                self._reply_error(408, b"request header read timeout")
        elif self.ticks > idle_timeout and self.transport is not None:
            self.uncork()
            self.transport.close()
            self.closed = True


class ConnTracker:
    """What a listener's connections report to: the sweeper's set, the connection cap and
    its overflow count, and telemetry hooks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int = 1 << 30) -> None:
        self.loop = loop
        self.conns: set[Downstream] = set()
        self.max_connections = max_connections
        self.overflows = 0
        # Refuse every connection with a reset (STRICT mTLS, and no certificate to speak it).
        self.refusing = False
        self.refused = 0

    def on_exchange_done(self, ex: Exchange) -> None:  # pragma: no cover - overridden
        pass

    def on_bad_request(self, ex: Exchange, status: int) -> None:  # pragma: no cover
        pass

    def on_handler_error(self, exc: Exception) -> None:  # pragma: no cover
        import traceback

        traceback.print_exception(exc)
