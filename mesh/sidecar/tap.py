"""The sidecar's wire tap: the first bytes of each new inbound connection, for a trainee to
see plaintext vs TLS without privileges (what ``tcpdump`` in the pod's network namespace
shows in Istio's tasks; ``meshctl tap POD`` reads it from the admin endpoint ``/tap``).

Primitives: ``record(first_bytes, peer)`` — called once per new inbound connection by the
listener where it peeks at the first bytes (PERMISSIVE's plaintext-or-TLS decision; pass what
was read, up to ``TAP_BYTES``: a TLS ClientHello shows its SNI and ALPN in clear within that);
``snapshot()`` — the recorded connections, oldest first, with a sequence number for
``meshctl tap --follow``. A bounded ring (``TAP_CONNECTIONS``) of bytes objects: no I/O, no
parsing on the data path (``mesh.security.wire`` reads the bytes in meshctl).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

TAP_BYTES = 1024
TAP_CONNECTIONS = 64

_ring: deque[tuple[int, float, str, int | None, bytes]] = deque(maxlen=TAP_CONNECTIONS)
_count = 0


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "" if peer is None else str(peer)


def record(first_bytes: bytes, peer: Any = None, port: int | None = None) -> None:
    """Remember the first bytes a new inbound connection sent (``peer``: its address tuple)."""
    global _count
    _count += 1
    _ring.append((_count, time.time(), _peer_text(peer), port, bytes(first_bytes[:TAP_BYTES])))


def snapshot(since: int = 0) -> dict[str, Any]:
    """``{"recorded": n, "connections": [{"seq", "at", "peer", "port", "hex"}...]}`` (JSON)."""
    return {
        "recorded": _count,
        "limit_bytes": TAP_BYTES,
        "connections": [
            {"seq": seq, "at": at, "peer": peer, "port": port, "hex": data.hex()}
            for seq, at, peer, port, data in _ring
            if seq > since
        ],
    }


def since_of(url: bytes) -> int:
    """``/tap?since=N`` → N (0 when absent or not a number)."""
    _path, _, query = url.partition(b"?")
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == b"since" and value.isdigit():
            return int(value)
    return 0


def clear() -> None:
    """Forget everything (tests)."""
    global _count
    _ring.clear()
    _count = 0
