"""Response framing and failure outcomes of one upstream attempt."""

from __future__ import annotations

import asyncio

from mesh.sidecar.downstream import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE
from mesh.sidecar.upstream import RESET, Attempt, Pool, UpstreamConn


def attempt():  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    conn = UpstreamConn(Pool(loop), "k")
    att = Attempt(None, conn, loop.create_future())
    conn.begin(att)
    return loop, conn, att


def test_framing_from_response_head():
    for data, framing, keep in [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", LENGTH, True),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", CHUNKED, True),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil close", UNTIL_CLOSE, False),
        (b"HTTP/1.1 204 No Content\r\n\r\n", NO_BODY, True),
    ]:
        loop, conn, att = attempt()
        conn.data_received(data)
        assert att.fut.done() and att.outcome in (200, 204)
        assert (att.framing, att.keep_alive) == (framing, keep), data
        if framing in (LENGTH, CHUNKED):
            assert att.complete and b"".join(att.buf) == b"ok"
        loop.close()


def test_informational_response_is_skipped():
    loop, conn, att = attempt()
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
    assert att.outcome == 201 and att.complete
    loop.close()


def test_loss_before_head_is_reset_and_mid_body_is_truncated():
    loop, conn, att = attempt()
    conn.connection_lost(None)
    assert att.outcome == RESET and att.fut.done()
    loop.close()
    loop, conn, att = attempt()
    conn.data_received(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
    conn.connection_lost(None)
    assert att.truncated and not att.complete
    loop.close()
    loop, conn, att = attempt()
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nabc")
    conn.connection_lost(None)
    assert att.complete and not att.truncated  # close-delimited: the close ends it
    loop.close()


def test_garbage_from_upstream_is_a_reset():
    loop, conn, att = attempt()

    class T:
        def abort(self) -> None:
            pass

    conn.transport = T()  # type: ignore[assignment]
    conn.data_received(b"SPEAKING NONSENSE\r\n\r\n")
    assert att.outcome == RESET and conn.closed
    loop.close()
