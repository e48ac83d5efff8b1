"""One coroutine try against a real loopback server: a pooled connection the upstream closed
while idle is tried once more on a new one (the keep-alive race), not counted as a try."""

from __future__ import annotations

import asyncio

from mesh.resilience.verdict import RESET
from mesh.sidecar.http1.client import Pool
from mesh.sidecar.runtime import AppEndpoint
from mesh.sidecar.tries import drop, try_once

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def _serve_once_then_close(reader, writer):  # type: ignore[no-untyped-def]
    await reader.readuntil(b"\r\n\r\n")
    writer.write(RESPONSE)
    await writer.drain()
    writer.close()  # the keep-alive connection dies while pooled


def test_the_keep_alive_race_is_tried_again_on_a_new_connection(loop):
    async def scenario() -> None:
        server = await asyncio.start_server(_serve_once_then_close, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Pool(loop)
        endpoint = AppEndpoint(f"127.0.0.1:{port}", "127.0.0.1", port)
        head = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
        first = await try_once(pool, loop, None, endpoint, head, False, None, 5.0)
        assert first is not None and first.outcome == 200 and first.complete
        pool.release(first.conn, True)  # pooled, then closed by the server
        await asyncio.sleep(0.05)
        # Taken from the pool (if the close is not seen yet) or not: either way an answer.
        again = await try_once(pool, loop, None, endpoint, head, False, None, 5.0)
        assert again is not None and again.outcome == 200 and again.conn.served == 0
        drop(pool, again)  # complete and keep-alive: back to the pool
        assert pool.idle.get(endpoint.key) and again.discard
        server.close()

    loop.run_until_complete(scenario())


def test_a_reset_on_a_new_connection_is_a_real_reset(loop):
    async def reset(reader, writer):  # type: ignore[no-untyped-def]
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    async def scenario() -> None:
        server = await asyncio.start_server(reset, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        endpoint = AppEndpoint(f"127.0.0.1:{port}", "127.0.0.1", port)
        att = await try_once(Pool(loop), loop, None, endpoint, b"GET / HTTP/1.1\r\n\r\n", False,
                             None, 5.0)  # fmt: skip
        assert att is not None and att.outcome == RESET
        server.close()

    loop.run_until_complete(scenario())
