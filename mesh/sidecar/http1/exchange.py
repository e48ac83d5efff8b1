"""One request/response pair on a client connection: ``Exchange``.

It holds the parsed request head (lowercase header names, as Envoy normalises them),
receives the request body as it streams in (forwarding it to the upstream ``sink`` once one
is attached, buffering it before that, and keeping a copy for a retry up to ``REPLAY_LIMIT``),
and writes the response: a local reply, an upstream response head followed by streamed body
chunks, or, after a 101 to a WebSocket upgrade, the relayed bytes of a tunnel.

What it needs of its connection and of the upstream it sends to are the ``Connection`` and
``Sink`` protocols below, so that this module imports neither side (``server`` makes
Exchanges, ``client`` answers them).
"""

from __future__ import annotations

from typing import Any, Protocol

from mesh.headers import RESPONSE_FLAGS
from mesh.sidecar.http1.framing import (
    CHUNKED,
    HOP_BY_HOP_BYTES,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    UNTIL_CLOSE,
    chunk,
    status_line,
)

# through once and disables retries for that request (the bytes are gone).
REPLAY_LIMIT = 64 * 1024
# Stop reading from the client while this much request body waits for an upstream.
BODY_BUFFER_HIGH = 256 * 1024

# Headers the proxy sets itself on the upstream request.
_SKIP_UPSTREAM: frozenset[bytes] = HOP_BY_HOP_BYTES | {b"host", b"content-length", b"expect"}


class Sink(Protocol):
    """Where a request's head and body go: an upstream connection (``client.UpstreamConn``)."""

    ticks: int

    def send_raw(self, data: bytes) -> None: ...
    def send_body(self, data: bytes, chunked: bool) -> None: ...
    def close(self, abort: bool = False) -> None: ...
    def downstream_gone(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Connection(Protocol):
    """The client connection an exchange belongs to (``server.Downstream``)."""

    closed: bool
    corked: bool
    peer: str
    peer_port: int
    server: Any

    def write(self, data: bytes) -> None: ...
    def uncork(self) -> None: ...
    def abort(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def exchange_finished(self, ex: Exchange) -> None: ...


class Exchange:
    """One request on a downstream connection and the response being written for it."""

    __slots__ = (
        "conn",
        "method",
        "url",
        "http11",
        "keep_alive",
        "headers",
        "hdict",
        "req_framing",
        "body",
        "body_size",
        "replay",
        "request_done",
        "sink",
        "start",
        "resp_framing",
        "status",
        "flags",
        "started",
        "finished",
        "bytes_in",
        "bytes_out",
        "upstream_host",
        "cluster_name",
        "labels",
        "mtls",
        "trace",
        "trace_root",
        "route",
        "peer_principal",
        "request_id",
        "authority",
        "paused",
        "upgrade",
        "tunnel_open",
        "early",
        "continue_owed",
    )

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.method = "GET"
        self.url = b""
        self.http11 = True
        self.keep_alive = True
        self.headers: list[tuple[bytes, bytes]] = []
        self.hdict: dict[str, str] = {}
        self.req_framing = NO_BODY
        self.body: list[bytes] = []
        self.body_size = 0
        self.replay: list[bytes] | None = []
        self.request_done = False
        self.sink: Sink | None = None
        self.start = 0.0
        self.resp_framing = NO_BODY
        self.status = 0
        self.flags = ""
        self.started = False
        self.finished = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.upstream_host = ""
        self.cluster_name = ""
        # Istio's metric labels up to request_protocol (``mesh.telemetry.istio.label_prefix``),
        # cached per peer pair and set by the pipeline; None: not known (a local reply).
        self.labels: tuple[str, ...] | None = None
        # The downstream connection is mutual TLS (set by the listener that terminated it):
        # the destination's connection_security_policy.
        self.mtls = False
        # The sampled b3 context of this proxy's span (None: not traced), whether the trace
        # started here, and the route it took (``Forward``; None: inbound or a local reply).
        self.trace: Any = None
        self.trace_root = False
        self.route: Any = None
        # Its verified peer's principal (``cluster.local/ns/<ns>/sa/<sa>``; None over
        # plaintext): set by the inbound listener that terminated it.
        self.peer_principal: str | None = None
        self.request_id = ""
        self.authority = ""
        self.paused = False
        # A WebSocket upgrade request: its Upgrade value. After the upstream's 101 the
        # exchange becomes a tunnel (``tunnel_open``): bytes pass both ways as they are.
        # Client bytes that arrive before the 101 wait in ``early``.
        self.upgrade: bytes | None = None
        self.tunnel_open = False
        self.early: list[bytes] = []
        # Expect: 100-continue on a request queued behind another: the interim answer goes
        # out when the exchange starts, never inside the running exchange's response.
        self.continue_owed = False

    # --- request body, fed by the parser -------------------------------------------------

    def _on_body(self, data: bytes) -> None:
        self.bytes_in += len(data)
        replay = self.replay
        if replay is not None:
            if self.bytes_in <= REPLAY_LIMIT:
                replay.append(data)
            else:
                self.replay = None
        sink = self.sink
        if sink is not None:
            sink.send_body(data, self.req_framing == CHUNKED)
            return
        self.body.append(data)
        self.body_size += len(data)
        if self.body_size > BODY_BUFFER_HIGH and not self.paused:
            self.paused = True
            self.conn.pause()

    def _on_complete(self) -> None:
        self.request_done = True
        sink = self.sink
        if sink is not None and self.req_framing == CHUNKED:
            sink.send_raw(LAST_CHUNK)

    @property
    def replayable(self) -> bool:
        """Whether the whole request body is still at hand (for a retry or a mirror)."""
        return self.replay is not None

    def attach(self, sink: Sink, head: bytes, replay: bool) -> None:
        """Make ``sink`` the upstream connection receiving this request, and send it the head.

        ``replay``: resend the whole body kept so far (a retry); otherwise send what was
        buffered while no upstream was attached.
        """
        source = self.replay if replay else self.body
        if not source and self.req_framing != CHUNKED:
            # The common case (no body, or none yet): the head alone.
            self.sink = sink
            sink.send_raw(head)
            if self.body:
                self.body = []
                self.body_size = 0
            if self.paused:
                self.paused = False
                self.conn.resume()
            return
        chunked = self.req_framing == CHUNKED
        parts = [head]
        if source:
            if chunked:
                parts.extend(chunk(b) for b in source if b)
            else:
                parts.extend(source)
        if self.request_done and chunked:
            parts.append(LAST_CHUNK)
        self.body = []
        self.body_size = 0
        self.sink = sink
        sink.send_raw(b"".join(parts))
        if self.paused:
            self.paused = False
            self.conn.resume()

    def detach(self) -> None:
        self.sink = None

    # --- WebSocket tunnel (after a 101 to an upgrade request) ---------------------------

    def tunnel_in(self, data: bytes) -> None:
        """Client bytes after the upgrade request's head: to the upstream once the tunnel is
        open, held until then."""
        self.bytes_in += len(data)
        sink = self.sink
        if self.tunnel_open and sink is not None:
            sink.ticks = 0  # traffic either way keeps the stream from idling out
            sink.send_raw(data)
            return
        self.early.append(data)
        self.body_size += len(data)
        if self.body_size > BODY_BUFFER_HIGH and not self.paused:
            self.paused = True
            self.conn.pause()

    def start_tunnel(self, lines: list[bytes], upgrade: bytes) -> bytes:
        """The upstream switched protocols: the bytes held for it go out now, and from here
        both directions are relayed as they are until either side closes. Returns the 101
        head for the client (``start_response``'s counterpart)."""
        self.status = 101
        self.started = True
        self.tunnel_open = True
        # Upstream bytes are relayed as they come (``encode_body`` passes them through).
        self.resp_framing = UNTIL_CLOSE
        early = self.early
        sink = self.sink
        if early and sink is not None:
            self.early = []
            sink.send_raw(b"".join(early))
        self.body_size = 0
        if self.paused:
            self.paused = False
            self.conn.resume()
        return b"".join(
            [status_line(101), *lines, b"connection: upgrade\r\nupgrade: ", upgrade, b"\r\n\r\n"]
        )

    def close_tunnel(self) -> None:
        """Either side closed: the client's connection ends once its data is written."""
        self.keep_alive = False
        self.finish()

    # --- response ---------------------------------------------------------------------

    def reply(
        self,
        status: int,
        body: bytes = b"",
        flags: str = "",
        headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...] = (),
        close: bool = False,
    ) -> None:
        """A complete local response (Envoy's local replies, admin pages, errors)."""
        if self.started:
            # Headers are out already: all we can do is cut the connection.
            self.abort(flags)
            return
        self.status = status
        if flags:
            self.flags = flags
        if close:
            self.keep_alive = False
        parts = [status_line(status), f"{RESPONSE_FLAGS}: {flags}\r\n".encode() if flags else b""]
        have_ct = False
        for name, value in headers:
            if name == b"content-type":
                have_ct = True
            parts.append(name + b": " + value + b"\r\n")
        if body and not have_ct:
            parts.append(b"content-type: text/plain\r\n")
        parts.append(b"content-length: %d\r\n" % len(body))
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if self.method != "HEAD":
            parts.append(body)
        self.started = True
        self.bytes_out = len(body)
        self.conn.write(b"".join(parts))
        self.finish()

    def start_response(self, status: int, lines: list[bytes], framing: int, length: int) -> bytes:
        """Response head for an upstream response, with its header ``lines`` (each ending in
        CRLF, hop-by-hop and framing headers already out); returns it (the caller writes it
        with the first body bytes, in one write) and fixes how the body is framed downstream."""
        self.status = status
        self.started = True
        if self.method == "HEAD" or status in (204, 304):
            framing = NO_BODY
        elif framing == CHUNKED or framing == UNTIL_CLOSE:
            # Re-frame for this client: chunked if it speaks HTTP/1.1, else until close.
            if self.http11:
                framing = CHUNKED
            else:
                framing = UNTIL_CLOSE
                self.keep_alive = False
        self.resp_framing = framing
        parts = [status_line(status), *lines]
        if framing == LENGTH or (framing == NO_BODY and length >= 0):
            parts.append(b"content-length: %d\r\n" % length)
        elif framing == CHUNKED:
            parts.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def encode_body(self, data: bytes) -> bytes:
        self.bytes_out += len(data)
        framing = self.resp_framing
        if framing == CHUNKED:
            return chunk(data) if data else b""
        if framing == NO_BODY:
            return b""
        return data

    def write_body(self, data: bytes) -> None:
        out = self.encode_body(data)
        if out:
            self.conn.write(out)

    def end_response(self, tail: bytes = b"") -> None:
        """Write ``tail`` (already encoded) and the end of the body, then finish."""
        if self.resp_framing == CHUNKED:
            tail += LAST_CHUNK
        elif self.resp_framing == UNTIL_CLOSE:
            self.keep_alive = False
        if tail:
            self.conn.write(tail)
        self.finish()

    def abort(self, flags: str = "") -> None:
        """Cut the downstream connection: the response cannot be completed."""
        if flags and flags not in self.flags:
            self.flags = f"{self.flags},{flags}" if self.flags else flags
        self.keep_alive = False
        self.conn.abort()
        self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.conn.exchange_finished(self)

    def add_flag(self, flag: str) -> None:
        if flag and flag not in self.flags.split(","):
            self.flags = f"{self.flags},{flag}" if self.flags else flag

    # --- helpers for the pipeline ------------------------------------------------------

    def upstream_headers(self, extra: list[bytes]) -> list[bytes]:
        """Request header lines to send upstream: hop-by-hop and framing headers dropped
        (also any named in ``Connection``), ``extra`` lines appended."""
        skip = _SKIP_UPSTREAM
        conn_hdr = self.hdict.get("connection")
        if conn_hdr and conn_hdr.lower() not in ("keep-alive", "close"):
            # Headers named in Connection are hop-by-hop too (RFC 9110 7.6.1).
            skip = skip | {t.strip().lower().encode("latin-1") for t in conn_hdr.split(",")}
        lines = [n + b": " + v + b"\r\n" for n, v in self.headers if n not in skip]
        if self.upgrade is not None:
            # The one hop-by-hop pair a proxy passes on: the upgrade it relays.
            lines.append(b"connection: upgrade\r\nupgrade: " + self.upgrade + b"\r\n")
        lines.extend(extra)
        return lines
