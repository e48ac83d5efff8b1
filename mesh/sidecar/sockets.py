"""The proxy's sockets and descriptors: ``listening_socket`` (a bound listening socket for an
IP literal), ``raise_fd_limit`` and ``connection_cap`` (the open-file limit and the
per-listener connection cap derived from it)."""

from __future__ import annotations

import resource
import socket

# File descriptors kept for everything but downstream connections (pooled upstream
# connections beyond one per downstream, files, the admin listener's clients).
RESERVED_FDS = 256


def raise_fd_limit(ceiling: int = 1 << 20) -> None:
    """Raise this process's open-file soft limit to its hard limit (at most ``ceiling``), as
    servers do at start: the soft default (often 1024) is far below what a proxy needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard if hard != resource.RLIM_INFINITY else ceiling, ceiling)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def connection_cap() -> int:
    """The default cap on concurrent downstream connections per listener: a refusal at the
    cap beats running out of file descriptors. Each downstream connection may hold one
    upstream connection, and a sidecar has two busy listeners (inbound, outbound): a quarter
    of the open-file limit, less a reserve, keeps every accepted connection servable."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(64, (soft - RESERVED_FDS) // 4)


def listening_socket(host: str, port: int) -> socket.socket | None:
    """A bound, listening socket for an IP literal. Handing the loop a ready socket spares
    uvloop's getaddrinfo, which would start libuv's thread pool (four threads, for nothing)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socket.inet_pton(family, host)
    except OSError:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
