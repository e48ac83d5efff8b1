"""Stage 8, request mirroring: fire-and-forget copies of a finished request to each mirror
cluster, with Host ``<host>-shadow``, whose responses are read and thrown away. A mirror never
delays, fails or changes the request it copies; over ``MAX_MIRRORS_IN_FLIGHT`` a copy is
skipped (it is best effort)."""

from __future__ import annotations

import asyncio

from mesh.routing.decision import Forward, RequestView
from mesh.sidecar.clusters import ClusterState
from mesh.sidecar.forwarding import request_head, request_lines, upstream_authority
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.framing import CHUNKED, NO_BODY
from mesh.sidecar.runtime import Runtime
from mesh.sidecar.tries import body_timeout, try_once

# Concurrent mirror copies per sidecar.
MAX_MIRRORS_IN_FLIGHT = 256
# A mirror's response is read for at most this long.
MIRROR_DEADLINE = 30.0


def shadow(authority: str) -> str:
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit():
        return f"{host}-shadow:{port}"
    return f"{authority}-shadow"


def mirror(rt: Runtime, ex: Exchange, view: RequestView, fwd: Forward, extra: list[bytes]) -> None:
    """Send a copy of ``ex`` (its whole body is in its replay copy) to each of ``fwd``'s mirrors."""
    body = b"".join(ex.replay or ())
    authority = shadow(upstream_authority(ex, view, fwd))
    lines = request_lines(ex, fwd.request_headers, extra)
    if ex.req_framing == CHUNKED:
        # The copy is sent whole, so it gets a plain length.
        lines.append(b"content-length: %d\r\n" % len(body))
        head = request_head(ex, ex.method, fwd.path, authority, lines, NO_BODY)
    else:
        head = request_head(ex, ex.method, fwd.path, authority, lines)
    for cluster in fwd.mirrors:
        state = rt.states.get(cluster.name)
        if state is None or rt.mirrors_in_flight >= MAX_MIRRORS_IN_FLIGHT:
            continue
        rt.mirrors_in_flight += 1
        rt.loop.create_task(_mirror_one(rt, state, head, body, ex.hdict, ex.conn.peer))


async def _mirror_one(
    rt: Runtime, state: ClusterState, head: bytes, body: bytes, headers: dict[str, str], peer: str
) -> None:
    try:
        view = RequestView(host=state.cluster.host, headers=headers, source_address=peer)
        endpoint = state.balancer.pick(state.healthy, view, rt.rng)
        if endpoint is None:
            return
        deadline = rt.loop.time() + MIRROR_DEADLINE
        security = rt.security
        tls = security.upstream(state.cluster.name, endpoint.key) if security is not None else None
        att = await try_once(rt.pool, rt.loop, None, endpoint, head, False, deadline,
                             state.connect_timeout, body, tls=tls)  # fmt: skip
        if att is None:
            return
        att.discard = True
        if not att.complete and att.outcome > 0:
            done: asyncio.Future[None] = rt.loop.create_future()
            att.done_fut = done
            timer = rt.loop.call_at(deadline, body_timeout, att)
            await done
            timer.cancel()
        rt.pool.release(att.conn, att.complete and att.keep_alive and not att.truncated)
    except Exception:  # a mirror must never hurt anything
        pass
    finally:
        rt.mirrors_in_flight -= 1
