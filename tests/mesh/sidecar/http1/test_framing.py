"""Chunk encoding and status lines, shared by both sides of the proxy."""

from __future__ import annotations

from mesh.sidecar.http1.framing import LAST_CHUNK, chunk, status_line


def test_chunks_and_the_last_chunk():
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 300) == b"12c\r\n" + b"x" * 300 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_status_lines_known_and_unknown():
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"
