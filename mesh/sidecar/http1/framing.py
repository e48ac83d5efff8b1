"""HTTP/1.1 framing shared by both sides of the proxy: how a body is delimited on the wire
(``NO_BODY``, ``LENGTH``, ``CHUNKED``, ``UNTIL_CLOSE``), chunk encoding, status lines, the
hop-by-hop header names, ``nodelay`` for every socket the proxy opens or accepts, and
``reset_socket`` / ``reset_transport`` (close with a TCP reset)."""

from __future__ import annotations

import asyncio
import socket
import struct
from http import HTTPStatus

from mesh.headers import HOP_BY_HOP_HEADERS

# Framing of a body on the wire.
NO_BODY = 0
LENGTH = 1
CHUNKED = 2
UNTIL_CLOSE = 3

HOP_BY_HOP_BYTES: frozenset[bytes] = frozenset(h.encode() for h in HOP_BY_HOP_HEADERS)

STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus
}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} Unknown\r\n".encode()
    return line


_ASCII_HEX = [f"{i:x}\r\n".encode() for i in range(256)]


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    n = len(data)
    size = _ASCII_HEX[n] if n < 256 else b"%x\r\n" % n
    return size + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def nodelay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY: a response head and its body can leave in two writes when the upstream
    sent them in two segments; with Nagle on, the second waits for the peer's delayed ACK
    (40 ms)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass


_LINGER_RESET = struct.pack("ii", 1, 0)


def reset_socket(sock: socket.socket) -> None:
    """Close with a TCP RST rather than a FIN (SO_LINGER on, timeout 0): the peer's next
    read fails with ECONNRESET (curl: ``(56) Recv failure: Connection reset by peer``)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass
    sock.close()


def reset_transport(transport: asyncio.BaseTransport) -> None:
    """``reset_socket`` for a connection the event loop owns."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except (OSError, AttributeError):
            pass
    transport.abort()  # type: ignore[attr-defined]
