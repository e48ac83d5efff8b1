"""The proxy's sockets and descriptor limits (``mesh.sidecar.sockets``)."""

from __future__ import annotations

from mesh.sidecar.sockets import RESERVED_FDS, connection_cap, listening_socket


def test_listening_socket_for_an_ip_literal_only() -> None:
    sock = listening_socket("127.0.0.1", 0)
    assert sock is not None
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and not sock.getblocking()
    finally:
        sock.close()
    assert listening_socket("localhost", 0) is None  # the loop resolves names


def test_connection_cap_leaves_a_reserve() -> None:
    assert connection_cap() >= 64
    assert RESERVED_FDS > 0
