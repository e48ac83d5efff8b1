"""Response framing and failure outcomes of one upstream attempt."""

from __future__ import annotations

import asyncio

from mesh.sidecar.http1.client import RESET, Attempt, Pool, UpstreamConn
from mesh.sidecar.http1.framing import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE


def attempt():  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    conn = UpstreamConn(Pool(loop), "k")
    att = Attempt(None, conn, loop.create_future())
    conn.begin(att)
    return loop, conn, att


def test_framing_from_response_head():
    for data, framing, keep in [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", LENGTH, True),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            CHUNKED,
            True,
        ),
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
    conn.data_received(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"
    )
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


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    abort = close

    def get_extra_info(self, name, default=None):  # type: ignore[no-untyped-def]
        return default


def _pooled(pool: Pool, idle: float, max_duration: float | None):  # type: ignore[no-untyped-def]
    conn = UpstreamConn(pool, "k")
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.set_limits(idle, max_duration)
    return conn, transport


def test_pooled_connection_closed_after_its_idle_timeout():
    loop = asyncio.new_event_loop()
    pool = Pool(loop)
    conn, transport = _pooled(pool, 2.0, None)
    pool.release(conn, True)
    pool.tick(600)
    pool.tick(600)  # at most 2 s idle so far: kept
    assert not transport.closed and pool.take_idle("k") is conn
    pool.release(conn, True)  # used again: idle time starts over
    pool.tick(600)
    pool.tick(600)
    assert not transport.closed
    pool.tick(600)  # two whole sweeper periods idle: closed, out of the pool
    assert transport.closed and pool.take_idle("k") is None and "k" not in pool.idle
    loop.close()


def test_pooled_connection_closed_after_max_connection_duration_once_idle():
    loop = asyncio.new_event_loop()
    pool = Pool(loop)
    old, old_t = _pooled(pool, 3600.0, 5.0)
    old.born -= 10  # older than maxConnectionDuration: closed when released, not pooled
    pool.release(old, True)
    assert old_t.closed and pool.take_idle("k") is None
    young, young_t = _pooled(pool, 3600.0, 5.0)
    pool.release(young, True)
    pool.tick(600, now=young.born + 1)
    assert not young_t.closed
    pool.tick(600, now=young.born + 6)
    assert young_t.closed and pool.take_idle("k") is None
    loop.close()


def test_default_idle_timeout_is_istios_hour():
    from mesh.sidecar.http1.client import DEFAULT_IDLE_TIMEOUT

    loop = asyncio.new_event_loop()
    conn = UpstreamConn(Pool(loop), "k")
    assert conn.idle_limit == DEFAULT_IDLE_TIMEOUT == 3600.0 and conn.max_duration is None
    loop.close()


def test_response_head_lines_forwarded_lowercased_without_hop_by_hop_headers():
    loop, conn, att = attempt()
    head = (b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nX-Served-By: reviews-v2\r\n"
            b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n"
            b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok")  # fmt: skip
    # The head arrives in three reads: it is taken whole once complete.
    for part in (head[:10], head[10:50], head[50:]):
        conn.data_received(part)
    assert att.outcome == 200 and att.complete and (att.framing, att.length) == (LENGTH, 2)
    assert att.lines == [b"server: gunicorn\r\n", b"x-served-by: reviews-v2\r\n",
                         b"set-cookie: a=1\r\n", b"set-cookie: b=2\r\n"]  # fmt: skip
    assert att.header_pairs()[1] == (b"x-served-by", b"reviews-v2")
    loop.close()


def test_informational_then_final_head_with_headers():
    loop, conn, att = attempt()
    conn.data_received(b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n")
    conn.data_received(b"HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 0\r\n\r\n")
    assert att.outcome == 200 and att.lines == [b"x-final: yes\r\n"]
    loop.close()


def test_endless_response_head_is_a_reset():
    loop, conn, att = attempt()
    conn.connection_made(_NullTransport())
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    for _ in range(100):
        conn.data_received(b"X-Filler: " + b"y" * 1000 + b"\r\n")
    assert att.outcome == RESET and conn.closed
    loop.close()


class _NullTransport(asyncio.Transport):
    def get_extra_info(self, name, default=None):  # type: ignore[no-untyped-def]
        return default

    def write(self, data) -> None:  # type: ignore[no-untyped-def]
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_switching_protocols_nobody_asked_for_is_a_reset():
    loop, conn, att = attempt()
    conn.connection_made(_NullTransport())
    conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\n\r\n\x81\x05hello")  # fmt: skip
    assert att.outcome == RESET and conn.closed and att.upgraded is None
    loop.close()


# --- a connection is pooled only when in step with its peer (issue 11) ------------------------


class _Upgrading:
    """The parts of an upgrade request's Exchange an Attempt reads."""

    method = "GET"
    upgrade = b"websocket"
    conn = None  # no client connection to cork


def test_a_refused_upgrade_leaves_the_connection_out_of_the_pool():
    loop = asyncio.new_event_loop()
    conn = UpstreamConn(Pool(loop), "k")
    att = Attempt(_Upgrading(), conn, loop.create_future())  # type: ignore[arg-type]
    conn.begin(att)
    conn.data_received(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    # Complete and keep-alive by its own framing, yet the upstream may still be reading the
    # body the upgrade head declared: never reused.
    assert att.outcome == 200 and att.complete and not att.keep_alive
    loop.close()


def test_a_transfer_coding_other_than_chunked_is_a_reset():
    loop, conn, att = attempt()
    conn.data_received(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nabc")
    assert att.outcome == RESET and conn.closed
    loop.close()


def test_a_second_response_to_one_request_drops_the_connection():
    loop, conn, att = attempt()
    conn.data_received(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                       b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nevil!")  # fmt: skip
    assert att.outcome == 200 and att.complete and b"".join(att.buf) == b"ok"
    assert conn.closed  # whatever came with it, this connection is no longer in step
    loop.close()
    # A partial second head counts too.
    loop, conn, att = attempt()
    conn.data_received(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 2")
    assert att.outcome == 204 and conn.closed
    loop.close()
