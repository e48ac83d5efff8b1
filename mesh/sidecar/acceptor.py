"""The inbound listener of a proxy with a workload identity: Envoy's ``tls_inspector`` and
filter-chain match, per connection.

Primitives:

- ``Acceptor``: accepts, peeks at the first bytes (``MSG_PEEK``: nothing consumed, and the
  single place ``tap`` sees them) and decides: a TLS ClientHello (``0x16 0x03``) is terminated
  with the workload certificate, client certificate required (verified against the mesh root
  by OpenSSL: an expired, foreign-CA or missing certificate fails the handshake, counted by
  reason); plaintext is served under PERMISSIVE and DISABLE and refused under STRICT with a
  TCP reset (the client sees ECONNRESET, curl's ``(56) Recv failure: Connection reset by
  peer``); under DISABLE a ClientHello goes to the HTTP parser as Envoy's plaintext-only
  listener would take it (400: the client's handshake fails).
- ``SecureDownstream``: a ``Downstream`` over TLS whose peer must carry one SPIFFE identity in
  the mesh's trust domain (else reset, ``ssl_fail_verify_san``); the ``PeerInfo`` (principal,
  XFCC element, SNI) is kept on the connection for its requests.
- ``looks_like_tls(head)``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mesh.security.identity import IdentityError
from mesh.security.mtls import MtlsMode
from mesh.sidecar.http1.framing import reset_socket, reset_transport
from mesh.sidecar.http1.server import Downstream, Handler
from mesh.sidecar.secure import Security

if TYPE_CHECKING:
    from mesh.sidecar.tls import Credentials

TLS_HANDSHAKE_TIMEOUT = 10.0
TAP_PEEK = 2048


def looks_like_tls(head: bytes) -> bool:
    """A TLS record header: handshake (0x16), protocol major version 3."""
    return len(head) >= 1 and head[0] == 0x16 and (len(head) < 2 or head[1] == 0x03)


class SecureDownstream(Downstream):
    """A client connection over mTLS: its peer is verified before any request is read."""

    __slots__ = ("security",)

    def __init__(self, handler: Handler, server: Any, port: int, security: Security) -> None:
        super().__init__(handler, server, port)
        self.security = security

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        try:
            self.tls = self.security.verify_client(transport.get_extra_info("ssl_object"))
        except IdentityError as exc:
            self.security._log(f"inbound mTLS peer refused: {exc}")
            self.closed = True
            self.transport = transport  # type: ignore[assignment]
            reset_transport(transport)
            return
        super().connection_made(transport)


class Acceptor:
    """The inbound listener of a proxy with an identity: plaintext or TLS per connection."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        tracker: Any,
        handler: Handler,
        port: int,
        security: Security,
        header_timeout: float = 10.0,
        tap: Callable[[bytes, str], None] | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.tracker = tracker
        self.handler = handler
        self.port = port
        self.security = security
        self.header_timeout = header_timeout
        self.tap = tap
        self.pending: set[socket.socket] = set()
        self.closed = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for conn in list(self.pending):
            self._drop_pending(conn)
            conn.close()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, say: try again on the next wakeup
                self.security._log(f"inbound accept failed: {exc}")
                return
            conn.setblocking(False)
            tracker = self.tracker
            if len(tracker.conns) + len(self.pending) >= tracker.max_connections:
                tracker.overflows += 1
                reset_socket(conn)
                continue
            if self.security.mode is MtlsMode.DISABLE and self.tap is None:
                self._serve(conn, None)  # plaintext only: nothing to look at
                continue
            self.pending.add(conn)
            timer = self.loop.call_later(self.header_timeout, self._timed_out, conn)
            self.loop.add_reader(conn.fileno(), self._peek, conn, timer)

    def _drop_pending(self, conn: socket.socket) -> None:
        self.pending.discard(conn)
        try:
            self.loop.remove_reader(conn.fileno())
        except (ValueError, OSError):
            pass

    def _timed_out(self, conn: socket.socket) -> None:
        if conn in self.pending:
            self._drop_pending(conn)
            conn.close()

    def _peek(self, conn: socket.socket, timer: asyncio.TimerHandle) -> None:
        try:
            # Enough for the TLS record header; with a tap, the whole ClientHello (SNI, ALPN).
            head = conn.recv(8 if self.tap is None else TAP_PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return  # spurious wakeup: keep waiting
        except OSError:
            head = b""
        self._drop_pending(conn)
        timer.cancel()
        if not head:
            conn.close()  # the client left before saying anything
            return
        peer = ""
        try:
            host, port = conn.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            pass
        if self.tap is not None:
            self.tap(head, peer)
        security = self.security
        tls = looks_like_tls(head)
        if tls and security.mode is not MtlsMode.DISABLE:
            creds = security.credentials
            if creds is None:
                # No certificate to terminate with (no identity yet): as Envoy's listener
                # without its secret, the handshake cannot happen.
                security.stats["no_identity_reset"] += 1
                reset_socket(conn)
                return
            self.loop.create_task(self._handshake(conn, creds))
            return
        if not tls and security.mode is MtlsMode.STRICT:
            security.stats["plaintext_reset"] += 1
            reset_socket(conn)
            return
        security.stats["plaintext_accepted"] += 1
        self._serve(conn, None)

    def _serve(self, conn: socket.socket, _unused: Any) -> None:
        tracker, handler, port = self.tracker, self.handler, self.port
        self.loop.create_task(self._connect(conn, lambda: Downstream(handler, tracker, port), None))

    async def _handshake(self, conn: socket.socket, creds: Credentials) -> None:
        tracker, handler, port, security = self.tracker, self.handler, self.port, self.security
        await self._connect(
            conn, lambda: SecureDownstream(handler, tracker, port, security), creds.server
        )

    async def _connect(self, conn: socket.socket, factory: Any, context: Any) -> None:
        try:
            if context is None:
                await self.loop.connect_accepted_socket(factory, conn)
            else:
                await self.loop.connect_accepted_socket(
                    factory, conn, ssl=context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
                )
        except (TimeoutError, OSError, ValueError) as exc:
            # ssl.SSLError is an OSError: a refused certificate, a plaintext speaker, a reset.
            if context is not None:
                self.security.handshake_failed(exc)
            try:
                conn.close()
            except OSError:
                pass
