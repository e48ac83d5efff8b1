"""The inbound listener of a proxy with an identity (``mesh.sidecar.acceptor``), on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mesh.security.ca import MeshCA
from mesh.security.mtls import MtlsMode
from mesh.sidecar.acceptor import Acceptor, looks_like_tls
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.server import ConnTracker
from mesh.sidecar.secure import Security
from mesh.sidecar.testing import write_secrets
from mesh.sidecar.tls import load_generation
from mesh.topology import Pod


def test_looks_like_tls() -> None:
    assert looks_like_tls(b"\x16\x03\x01\x02\x00")
    assert looks_like_tls(b"\x16")  # one byte so far: a handshake record
    assert not looks_like_tls(b"GET / HTTP/1.1")
    assert not looks_like_tls(b"\x16\x01")
    assert not looks_like_tls(b"")


class _Tracker(ConnTracker):
    def on_exchange_done(self, ex: Exchange) -> None:
        pass


def _serve(loop: asyncio.AbstractEventLoop, sec: Security) -> tuple[Acceptor, int, list[Any]]:
    seen: list[Any] = []

    def handler(ex: Exchange) -> None:
        seen.append(ex.conn.tls)  # type: ignore[attr-defined]
        ex.reply(200, b"hello")

    sock = socket.create_server(("127.0.0.1", 0))
    acceptor = Acceptor(loop, sock, _Tracker(loop), handler, 9080, sec, header_timeout=5)
    acceptor.start()
    return acceptor, sock.getsockname()[1], seen


async def _ask(port: int, ssl_context: Any = None) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def _security(mode: MtlsMode, creds: Any = None) -> Security:
    secrets = SimpleNamespace(current=creds, status=lambda: {})
    sec = Security(Pod("httpbin-1", namespace="foo"), 9080, secrets, log=lambda _: None)  # type: ignore[arg-type]
    sec.mode = mode
    return sec


def test_permissive_serves_plaintext_strict_resets_it(loop: asyncio.AbstractEventLoop) -> None:
    sec = _security(MtlsMode.PERMISSIVE)
    acceptor, port, seen = _serve(loop, sec)
    try:
        assert loop.run_until_complete(_ask(port)).startswith(b"HTTP/1.1 200")
        assert seen == [None]
        sec.mode = MtlsMode.STRICT
        with pytest.raises(ConnectionResetError):
            loop.run_until_complete(_ask(port))
        assert sec.stats["plaintext_reset"] == 1 and sec.stats["plaintext_accepted"] == 1
    finally:
        acceptor.close()


def test_mtls_is_terminated_and_the_peer_known(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    ca = MeshCA.create(datetime.now(UTC))
    server = load_generation(write_secrets(tmp_path / "s", ca, "foo", "httpbin"), time.time())
    client = load_generation(write_secrets(tmp_path / "c", ca, "foo", "sleep"), time.time())
    sec = _security(MtlsMode.STRICT, server)
    acceptor, port, seen = _serve(loop, sec)
    try:
        answer = loop.run_until_complete(_ask(port, client.client))
        assert answer.startswith(b"HTTP/1.1 200")
        assert seen[0].principal == "cluster.local/ns/foo/sa/sleep"
        element = seen[0].details.element()
        assert element.startswith("By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=")
        assert sec.stats["ssl_handshake"] == 1
    finally:
        acceptor.close()


def test_tls_without_an_identity_is_reset(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    ca = MeshCA.create(datetime.now(UTC))
    client = load_generation(write_secrets(tmp_path / "c", ca, "foo", "sleep"), time.time())
    sec = _security(MtlsMode.PERMISSIVE, None)
    acceptor, port, _ = _serve(loop, sec)
    try:
        with pytest.raises((ConnectionResetError, OSError)):
            loop.run_until_complete(_ask(port, client.client))
        assert sec.stats["no_identity_reset"] == 1
    finally:
        acceptor.close()
