"""One upstream try in a coroutine (``try_once``), and what happens to an answer that is not
used (``drop``) or outlives the route timeout (``body_timeout``).

The keep-alive race is handled here and only here: a connection taken from the pool that the
upstream had closed while idle fails with nothing received (``verdict.stale``); the same try
goes once more on a new connection to the same endpoint, as HTTP clients do, without
counting as an attempt. (A try started from the connection's callbacks that meets it hands
the try over to this coroutine, on a new connection.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from mesh.resilience.verdict import stale
from mesh.sidecar.http1.client import Attempt, Pool
from mesh.sidecar.http1.exchange import Exchange


async def try_once(
    pool: Pool,
    loop: asyncio.AbstractEventLoop,
    ex: Exchange | None,
    endpoint: Any,
    head: bytes,
    replay: bool,
    deadline: float | None,
    connect_timeout: float,
    body: bytes = b"",
    fresh: bool = False,
    tls: Any = None,
) -> Attempt | None:
    """A pooled (unless ``fresh``) or new connection to ``endpoint``, the request (``ex``'s,
    its body resent from the replay copy when ``replay``; or ``head`` + ``body`` whole, for a
    mirror), and the response head. None: no connection could be made. ``tls``: the
    connection's TLS (``mesh.sidecar.secure.UpstreamTLS``), whose pool key it goes by."""
    key = endpoint.key if tls is None else tls.pool_key
    conn = None if fresh else pool.take_idle(key)
    while True:
        if conn is None:
            timeout = connect_timeout
            if deadline is not None:
                timeout = min(timeout, max(deadline - loop.time(), 0.001))
            conn = await pool.connect(key, endpoint.address, endpoint.port, timeout, tls)
            if conn is None:
                return None
        fut: asyncio.Future[None] = loop.create_future()
        att = Attempt(ex, conn, fut)
        conn.begin(att)
        if ex is not None:
            ex.attach(conn, head, replay)
        else:
            conn.send_raw(head + body)
        timer = loop.call_at(deadline, att.on_timeout) if deadline is not None else None
        await fut
        if timer is not None:
            timer.cancel()
        replayable = ex is None or ex.replayable
        if stale(att.outcome, bool(att.buf), replayable, conn.served > 0):
            pool.release(conn, False)
            if ex is not None:
                ex.detach()
            replay = True
            conn = None
            continue
        return att


def drop(pool: Pool, att: Attempt) -> None:
    """Throw away a response that is going to be retried: reuse the connection only if the
    response is complete already (and the request was sent whole)."""
    att.discard = True
    ex = att.ex
    done = ex is None or ex.request_done
    pool.release(att.conn, att.complete and att.keep_alive and done)


def body_timeout(att: Attempt) -> None:
    """The route timeout passed while the response body was still streaming."""
    att.timer = None
    att.truncated = True
    att.conn.close(abort=True)
    done = att.done_fut
    if done is not None and not done.done():
        done.set_result(None)
    flight = att.flight
    if flight is not None and att.committed:
        flight.on_done(att)
