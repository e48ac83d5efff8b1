"""HTTP/1.1 towards upstreams (the client side): keep-alive connections, a pool per endpoint, one try at a time.

Primitives:

- ``UpstreamConn``: an ``asyncio.Protocol`` with an httptools response parser; it carries one
  ``Attempt`` at a time and feeds it the response head, body chunks and end (or the loss of
  the connection).
- ``Attempt``: one try of one ``Exchange`` on one connection. Until the pipeline *commits*
  it, the response is held (status and headers, any early body bytes), so that a retriable
  answer can be dropped and tried elsewhere; once committed, body chunks go straight from the
  upstream socket to the client's without waiting for the pipeline coroutine.
- ``Pool``: idle keep-alive connections per endpoint key (``address:port``), shared by every
  cluster that contains the endpoint.

Failures are values, not exceptions, so the pipeline's retry loop stays flat: an attempt
ends with ``outcome`` = an HTTP status, or one of ``CONNECT_FAILURE``, ``RESET``,
``TIMEOUT`` (``mesh.resilience.verdict`` judges it).

A connection goes back to the pool only when it is known to be in step with its peer: the
response complete by its own framing, keep-alive, the request fully sent (checked by the
pipeline), and never after an upgrade request that was not switched (the upstream may still
wait for the body its head declared, as Envoy closes such a connection). A response the
proxy cannot frame exactly (a transfer coding other than ``chunked``, as Envoy's codec) or
bytes beyond the one response asked for are a protocol error: the connection is dropped.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import httptools

from mesh.resilience.verdict import CONNECT_FAILURE, RESET, TIMEOUT
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.framing import (
    CHUNKED,
    HOP_BY_HOP_BYTES,
    LENGTH,
    NO_BODY,
    UNTIL_CLOSE,
    chunk,
    nodelay,
)

__all__ = ["CONNECT_FAILURE", "RESET", "TIMEOUT", "Attempt", "Listener", "Pool", "UpstreamConn"]


class Listener(Protocol):
    """Who an attempt in callback mode reports to (the pipeline's ``Flight``): the response
    head or a failure (``on_response``), and the end of a committed response (``on_done``)."""

    def on_response(self, att: Attempt) -> None: ...
    def on_done(self, att: Attempt) -> None: ...


# Response headers not passed on as received: hop-by-hop ones, and the framing, which the
# proxy re-frames for its client.
_NOT_FORWARDED = HOP_BY_HOP_BYTES | {b"content-length"}


class _Unframed(Exception):
    """Raised from a parser callback: the response cannot be framed exactly (protocol error)."""


# Envoy's max_response_headers_kb default: a longer response head is a protocol error.
MAX_RESPONSE_HEAD_BYTES = 60 * 1024
# Idle connections kept per endpoint; more are closed on release.
MAX_IDLE_PER_ENDPOINT = 64
# Istio's connectionPool.{http,tcp}.idleTimeout default: a pooled connection with no request
# for this long is closed.
DEFAULT_IDLE_TIMEOUT = 3600.0


class Attempt:
    """One try of an exchange on one upstream connection."""

    __slots__ = (
        "ex",
        "conn",
        "fut",
        "done_fut",
        "outcome",
        "lines",
        "keep_alive",
        "framing",
        "length",
        "buf",
        "committed",
        "complete",
        "truncated",
        "discard",
        "flight",
        "timer",
        "upgraded",
    )

    def __init__(
        self, ex: Exchange | None, conn: UpstreamConn, fut: asyncio.Future[None] | None
    ) -> None:
        self.ex = ex
        self.conn = conn
        # Awaited by a coroutine (``fut``), or driven by callbacks into ``flight``.
        self.fut = fut
        self.flight: Listener | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.done_fut: asyncio.Future[None] | None = None
        self.outcome = 0
        # Response header lines to forward (``on_head``).
        self.lines: list[bytes] = []
        self.keep_alive = True
        self.framing = NO_BODY
        self.length = -1
        self.buf: list[bytes] = []
        self.committed = False
        self.complete = False
        self.truncated = False
        # A mirror, or a response dropped for a retry: read and throw away.
        self.discard = False
        # The upstream answered an upgrade request with 101: its Upgrade value. The
        # connection then carries the new protocol's bytes until either side closes.
        self.upgraded: bytes | None = None

    # --- events from the connection ------------------------------------------------------

    def on_head(self, status: int, block: bytes, keep_alive: bool) -> None:
        """The response head: ``block`` is its header lines as received (validated by
        llhttp: CRLF-separated ``name:value``, no folding). One pass keeps the lines to
        forward (names lowercased, as Envoy writes them; hop-by-hop and framing headers
        out) and reads the body's framing."""
        framing = UNTIL_CLOSE
        length = -1
        lines: list[bytes] = []
        if block:
            keep = lines.append
            for line in block.split(b"\r\n"):
                name, _, value = line.partition(b":")
                name = name.lower()
                if name not in _NOT_FORWARDED:
                    keep(name + b":" + value + b"\r\n")
                elif name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        length = -1
                    if framing != CHUNKED:
                        framing = LENGTH
                elif name == b"transfer-encoding":
                    if value.strip(b" \t").lower() != b"chunked":
                        raise _Unframed  # Envoy's codec: only chunked is implemented
                    framing = CHUNKED
                elif name == b"upgrade" and status == 101:
                    self.upgraded = value.strip(b" \t")
        ex = self.ex
        if status == 101:
            # Only reached for an upgrade request (``on_headers_complete``): no body, and
            # the connection is the tunnel's from now on.
            framing = NO_BODY
            keep_alive = False
            if self.upgraded is None:
                self.upgraded = ex.upgrade if ex is not None and ex.upgrade else b"websocket"
        elif status == 204 or status == 304:
            framing = NO_BODY
        elif framing == UNTIL_CLOSE:
            keep_alive = False
        if ex is not None and ex.upgrade is not None and status != 101:
            # A refused upgrade: the upstream may still expect the body the head declared
            # (sent only after a 101), so this connection's framing is unknown: not reused.
            keep_alive = False
        if ex is not None and ex.method == "HEAD":
            framing = NO_BODY
            # httptools cannot be told that a HEAD response has no body; the connection's
            # framing is unknowable now, so it is not reused.
            keep_alive = False
            self.complete = True
        self.outcome = status
        self.lines = lines
        self.keep_alive = keep_alive
        self.framing = framing
        self.length = length
        fut = self.fut
        if fut is not None:
            if not fut.done():
                fut.set_result(None)
        elif self.flight is not None:
            # Dispatched once the current read is parsed, so that the body bytes that came
            # with the head are buffered by then and go out in the same write.
            self.conn.ready = self

    def header_pairs(self) -> list[tuple[bytes, bytes]]:
        """The forwarded response headers as (lowercase name, value) pairs, for the routes
        that edit them (header operations, CORS)."""
        pairs = []
        for line in self.lines:
            name, _, value = line[:-2].partition(b":")
            pairs.append((name, value.strip(b" \t")))
        return pairs

    def on_body(self, data: bytes) -> None:
        if self.discard:
            return
        if self.committed:
            ex = self.ex
            if ex is not None:
                ex.write_body(data)
        else:
            self.buf.append(data)

    def on_complete(self) -> None:
        if self.upgraded is not None:
            return  # the 101's "message" ends; the tunnel does not
        self.complete = True
        done = self.done_fut
        if done is not None and not done.done():
            done.set_result(None)
        if self.committed and self.flight is not None:
            self.flight.on_done(self)

    def on_lost(self) -> None:
        if self.complete:
            return
        if self.upgraded is not None and self.outcome == 101:
            # The tunnel's upstream side closed: the relay is over.
            self.complete = True
            # (Not committed yet: the pipeline sees ``complete`` when it opens the tunnel.)
            if self.committed and self.flight is not None:
                self.flight.on_done(self)
            return
        if self.outcome == 0:
            self.outcome = RESET
            fut = self.fut
            if fut is not None:
                if not fut.done():
                    fut.set_result(None)
            elif self.flight is not None:
                self.flight.on_response(self)
            return
        if self.framing == UNTIL_CLOSE:
            self.keep_alive = False
            self.on_complete()
            return
        self.truncated = True
        done = self.done_fut
        if done is not None and not done.done():
            done.set_result(None)
        if self.flight is not None:
            if self.committed:
                self.flight.on_done(self)
            elif self.fut is None:
                # Head received, not yet dispatched, then the connection died.
                self.conn.ready = self

    def on_timeout(self) -> None:
        """The per-try or route deadline passed before the response head arrived."""
        fut = self.fut
        if fut is not None and not fut.done():
            self.outcome = TIMEOUT
            fut.set_result(None)
            self.conn.close(abort=True)


class UpstreamConn(asyncio.Protocol):
    """One keep-alive connection to an endpoint."""

    __slots__ = (
        "pool",
        "key",
        "transport",
        "parser",
        "attempt",
        "served",
        "closed",
        "ticks",
        "raw",
        "head_from",
        "informational",
        "tunnel",
        "ready",
        "idle_limit",
        "max_duration",
        "born",
    )

    def __init__(self, pool: Pool, key: str) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.attempt: Attempt | None = None
        self.served = 0
        self.closed = False
        self.ticks = 0
        # The bytes of the response head(s) of the current attempt, as received until its
        # final head is complete (``on_headers_complete`` slices the header block from
        # them instead of taking one parser callback per header line), and where the next
        # head starts in them (after 1xx interim responses).
        self.raw = b""
        self.head_from = -1
        self.informational = False
        # After a 101: bytes are relayed to the client as they are, no more parsing.
        self.tunnel = False
        # An attempt whose response head arrived in the read being parsed (callback mode).
        self.ready: Attempt | None = None
        # From the DestinationRule of the cluster that last used it (``set_limits``): close
        # when idle in the pool for ``idle_limit`` s (connectionPool idleTimeout), and once
        # idle after ``max_duration`` s of life (tcp.maxConnectionDuration).
        self.idle_limit = DEFAULT_IDLE_TIMEOUT
        self.max_duration: float | None = None
        self.born = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.born = time.monotonic()
        nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        att = self.attempt
        if att is not None:
            att.on_lost()

    def data_received(self, data: bytes) -> None:
        self.ticks = 0
        att = self.attempt
        if self.tunnel:
            if att is not None:
                att.on_body(data)
            return
        if att is None:
            # Bytes nobody asked for: the connection's state is unknown, drop it.
            self.close(abort=True)
            return
        if self.head_from >= 0:
            self.raw = self.raw + data if self.raw else data
        # Writes to the client caused by this read go out together at its end.
        ex = att.ex
        down = ex.conn if ex is not None else None
        if down is not None:
            if down.corked:
                down = None  # corked further up: whoever corked it uncorks it
            else:
                down.corked = True
        try:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                if att.upgraded is not None:
                    self.tunnel = True
                    offset = exc.args[0] if exc.args else len(data)
                    if offset < len(data):
                        att.on_body(data[offset:])
                else:  # a switch nobody asked for
                    self.protocol_error()
            except httptools.HttpParserError:
                self.protocol_error()
            if self.head_from >= 0 and len(self.raw) > MAX_RESPONSE_HEAD_BYTES:
                # A head that never ends: a broken upstream (Envoy: max_response_headers_kb).
                self.protocol_error()
            ready = self.ready
            if ready is not None:
                self.ready = None
                flight = ready.flight
                if flight is not None and not ready.committed:
                    flight.on_response(ready)
        finally:
            if down is not None:
                down.uncork()

    def eof_received(self) -> bool | None:
        return None

    def protocol_error(self) -> None:
        """The upstream broke HTTP: the connection is dropped and its attempt sees a reset."""
        self.close(abort=True)
        att = self.attempt
        if att is not None:
            att.on_lost()

    def pause_writing(self) -> None:
        att = self.attempt
        if att is not None and att.ex is not None:
            att.ex.conn.pause()

    def resume_writing(self) -> None:
        att = self.attempt
        if att is not None and att.ex is not None:
            att.ex.conn.resume()

    # --- httptools callbacks -------------------------------------------------------------

    # No on_header: two Python calls per header line less; the header block is sliced from
    # the received bytes once the head is complete.

    def on_message_begin(self) -> None:
        if self.head_from < 0:
            # The final response of this attempt is in already (or none was asked for): a
            # second response to one request would be read as the next request's answer.
            raise _Unframed

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        raw = self.raw
        start = self.head_from
        if start < 0:  # pragma: no cover - a head with no attempt begun (closed by now)
            return
        end = raw.find(b"\r\n\r\n", start)
        self.head_from = end + 4
        att = self.attempt
        if 100 <= status < 200 and not (
            status == 101 and att is not None and att.ex is not None and att.ex.upgrade
        ):
            # 100 Continue and friends: the real response follows. (A 101 to an upgrade
            # request is the response.)
            self.informational = True
            return
        self.raw = b""
        self.head_from = -1
        if att is not None:
            block = raw[raw.find(b"\r\n", start) + 2 : end]
            att.on_head(status, block, parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        att = self.attempt
        if att is not None:
            att.on_body(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        att = self.attempt
        if att is not None:
            att.on_complete()

    # --- used by the pipeline ------------------------------------------------------------

    def begin(self, att: Attempt) -> None:
        self.attempt = att
        self.ticks = 0
        self.raw = b""
        self.head_from = 0

    def send_raw(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not self.closed:
            transport.write(data)

    def send_body(self, data: bytes, chunked: bool) -> None:
        if data:
            self.send_raw(chunk(data) if chunked else data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def downstream_gone(self) -> None:
        """The client left mid-exchange: this connection's response is unwanted."""
        self.close(abort=True)

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.pool.forget(self)
        transport = self.transport
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()

    def set_limits(self, idle_limit: float, max_duration: float | None) -> None:
        self.idle_limit = idle_limit
        self.max_duration = max_duration

    def expired(self, now: float) -> bool:
        """Past its maximum lifetime (tcp.maxConnectionDuration)."""
        return self.max_duration is not None and now - self.born >= self.max_duration

    def tick(self, idle_timeout: int) -> None:
        """Once a second: an active connection silent for ``idle_timeout`` s is cut
        (Envoy's stream idle timeout); its attempt sees a reset."""
        self.ticks += 1
        if self.attempt is not None and self.ticks >= idle_timeout:
            self.close(abort=True)


class Pool:
    """Idle keep-alive upstream connections, per endpoint."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle: dict[str, list[UpstreamConn]] = {}
        self.active: set[UpstreamConn] = set()
        # Originates TLS for the connections that need it (``mesh.sidecar.secure.Security``:
        # the contexts, the server's identity check); None: plaintext only.
        self.security: Any = None

    def take_idle(self, key: str) -> UpstreamConn | None:
        conns = self.idle.get(key)
        while conns:
            conn = conns.pop()
            if not conn.closed:
                self.active.add(conn)
                return conn
        return None

    async def connect(
        self, key: str, address: str, port: int, timeout: float | None, tls: Any = None
    ) -> UpstreamConn | None:
        """A new connection, or None when it cannot be made (refused, unreachable, slow; with
        ``tls``, a ``mesh.sidecar.secure.UpstreamTLS``: a failed handshake or a server that
        is not who it should be)."""
        loop = self.loop
        if tls is not None:
            if self.security is None:
                return None
            secured: UpstreamConn | None = await self.security.connect(
                self, key, address, port, timeout, tls
            )
            return secured
        try:
            coro = loop.create_connection(lambda: UpstreamConn(self, key), address, port)
            if timeout is not None:
                _, proto = await asyncio.wait_for(coro, timeout)
            else:
                _, proto = await coro
        except (TimeoutError, OSError):
            return None
        conn: UpstreamConn = proto
        self.active.add(conn)
        return conn

    def release(self, conn: UpstreamConn, reusable: bool) -> None:
        conn.attempt = None
        self.active.discard(conn)
        if conn.closed:
            return
        if not reusable or (conn.max_duration is not None and conn.expired(time.monotonic())):
            conn.close()
            return
        conn.ticks = 0  # idle from now on (counted by ``tick``)
        conn.served += 1
        conns = self.idle.get(conn.key)
        if conns is None:
            conns = self.idle[conn.key] = []
        elif len(conns) >= MAX_IDLE_PER_ENDPOINT:
            conn.close()
            return
        conns.append(conn)

    def forget(self, conn: UpstreamConn) -> None:
        self.active.discard(conn)
        conns = self.idle.get(conn.key)
        if conns and conn in conns:
            conns.remove(conn)

    def tick(self, idle_timeout: int, now: float | None = None) -> None:
        """Once a second: stream idle timeouts of the active connections; pooled ones idle
        for their cluster's idleTimeout (checked once a second, no per-request clock read),
        or older than its maxConnectionDuration, are closed."""
        for conn in list(self.active):
            conn.tick(idle_timeout)
        if not self.idle:
            return
        if now is None:
            now = time.monotonic()
        for key, conns in list(self.idle.items()):
            for conn in list(conns):
                conn.ticks += 1
                # ticks - 1 whole sweeper periods have passed since the release: never
                # closed before idleTimeout, at most a second after it.
                if conn.ticks - 1 >= conn.idle_limit or conn.expired(now):
                    conn.close()  # also takes it out of ``conns``
            if not conns:
                del self.idle[key]

    def close_all(self) -> None:
        for conns in list(self.idle.values()):
            for conn in list(conns):
                conn.close()
        for conn in list(self.active):
            conn.close(abort=True)
