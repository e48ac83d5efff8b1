"""The sidecar's request pipeline: every stage, in order, listed once.

Routed traffic (the outbound listener, and every listener of a gateway)::

    1. view     RequestView from the head (host and port from the absolute-form URI, else Host)
    2. decide   routing engine -> LocalReply (404 NR, redirect, direct response) | Forward
    3. fault    injected delay (DI), then injected abort (FI, "fault filter abort"); an
                injected fault never reaches an upstream, is never retried, is not counted
                by outlier detection
    4. cluster  a subset no DestinationRule defines -> 503 NC
    5. admit    connectionPool limits -> 503 UO at once, with x-envoy-overloaded: true
    6. try      loop { pick an endpoint that is not ejected (none -> 503 UH)
                       -> forward with the per-try timeout
                       -> outcome to the cluster's outlier detector
                       -> retry per retryOn, after back-off, on another host }
                until done or attempts exhausted (URX); the route timeout bounds the whole
                loop and the response body (504 UT)
    7. respond  response header operations, then the body streams to the client
    8. mirror   fire-and-forget copies, Host "<host>-shadow", responses discarded

Inbound traffic (the pod's service port): forward to the local app, no routing (the
caller's sidecar already decided), local failures -> 503 UF / 504 UT.

A request reads ``runtime.table`` once, at stage 2, and keeps that table (and its clusters'
state) to the end: a config swap never changes a request in flight.

Request bodies for retries: up to ``REPLAY_LIMIT`` bytes are kept so that a retry (and a
mirror) can resend them; a bigger body streams through once and disables further tries for
that request (the answer of the one try is returned as it is).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httptools

from mesh.resilience.retry import backoff, should_retry
from mesh.routing import decide
from mesh.routing.decision import (
    CONNECT_FAILURE_BODY,
    FAULT_ABORT_BODY,
    NO_CLUSTER_BODY,
    NO_HEALTHY_UPSTREAM_BODY,
    OVERFLOW_BODY,
    UPSTREAM_TIMEOUT_BODY,
    Forward,
    HeaderOps,
    LocalReply,
    RequestView,
)
from mesh.sidecar.clusters import ClusterState, Load
from mesh.sidecar.downstream import (
    CHUNKED,
    HOP_BY_HOP_BYTES,
    LENGTH,
    Exchange,
    new_request_id,
)
from mesh.sidecar.telemetry import Telemetry
from mesh.sidecar.upstream import (
    CONNECT_FAILURE,
    RESET,
    TIMEOUT,
    Attempt,
    Pool,
)

OVERLOADED = ((b"x-envoy-overloaded", b"true"),)
_KIND = {CONNECT_FAILURE: "connect-failure", RESET: "reset", TIMEOUT: "timeout"}
# Concurrent mirror copies per sidecar; beyond this a copy is skipped (it is best effort).
MAX_MIRRORS_IN_FLIGHT = 256
# Envoy's stream idle timeout (5 min) for an upstream that goes silent mid-response.
STREAM_IDLE_TIMEOUT = 300


class Runtime:
    """What the pipeline reads: the applied table and its per-cluster state, the upstream
    pool, telemetry. ``install`` swaps tables atomically (one attribute assignment)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: Pool,
        telemetry: Telemetry,
        rng: random.Random | None = None,
        app_address: str = "127.0.0.1",
        app_port: int | None = None,
        pod_labels: tuple[str, str, str] = ("unknown", "unknown", "unknown"),
    ) -> None:
        self.loop = loop
        self.pool = pool
        self.telemetry = telemetry
        self.rng = rng or random.Random()
        self.table: Any = None
        self.states: dict[str, ClusterState] = {}
        self.loads: dict[str, Load] = {}
        self.app_address = app_address
        self.app_port = app_port
        self.app_key = f"{app_address}:{app_port}"
        self.pod_labels = pod_labels
        self.mirrors_in_flight = 0

    def install(self, table: Any) -> None:
        """Build the cluster states of ``table`` and make it current, in one assignment."""
        now = time.monotonic()
        states: dict[str, ClusterState] = {}
        for name, cluster in table.clusters.items():
            load = self.loads.get(name)
            if load is None:
                load = self.loads[name] = Load()
            states[name] = ClusterState(cluster, load, self.states.get(name), now)
        # Readers take (table, states) together from this tuple-free pair of assignments;
        # nothing awaits between them, so no request can see one without the other.
        self.states = states
        self.table = table

    def sweep(self, now: float) -> None:
        for state in self.states.values():
            state.maybe_sweep(now)


# --- stage 1: the request as the router sees it ----------------------------------------------


def split_authority(authority: str, default_port: int) -> tuple[str, int]:
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host, int(port)
    return authority, default_port


def request_view(ex: Exchange, port: int | None, absolute: bool) -> RequestView:
    """Host, port and path of ``ex``. ``absolute``: an outbound listener, where the app's
    HTTP_PROXY client sends absolute-form targets (``GET http://reviews:9080/x``)."""
    url = ex.url
    authority = ex.hdict.get("host", "")
    if absolute and url[:1] != b"/":
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            parsed = None
        if parsed is not None and parsed.host:
            authority = parsed.host.decode("latin-1")
            if parsed.port:
                authority = f"{authority}:{parsed.port}"
            path = (parsed.path or b"/").decode("latin-1")
            if parsed.query:
                path = f"{path}?{parsed.query.decode('latin-1')}"
        else:
            path = url.decode("latin-1")
    else:
        path = url.decode("latin-1")
    ex.authority = authority
    ex.path = path
    host, addressed_port = split_authority(authority, 80)
    return RequestView(
        host=host,
        path=path,
        method=ex.method,
        headers=ex.hdict,
        port=addressed_port if port is None else port,
        source_address=ex.conn.peer,
    )


# --- the routed pipeline -----------------------------------------------------------------------


async def handle_routed(rt: Runtime, ex: Exchange, server_port: int | None, edge: bool) -> None:
    """Stages 1-8 for one request (outbound: ``server_port`` None; gateway: its server port)."""
    table = rt.table
    states = rt.states
    if ex.finished:  # answered already (a broken request body)
        return
    if table is None:
        ex.reply(503, NO_HEALTHY_UPSTREAM_BODY, "UH")
        return
    # 1. view
    view = request_view(ex, server_port, absolute=server_port is None)
    extra: list[bytes] = []
    if "x-request-id" not in ex.hdict:
        ex.request_id = new_request_id()
        extra.append(b"x-request-id: " + ex.request_id.encode() + b"\r\n")
    if edge:
        extra.append(_xff(ex))
        extra.append(b"x-forwarded-proto: http\r\n")
    # 2. decide
    decision = decide(table, view, rt.rng)
    if isinstance(decision, LocalReply):
        _local_reply(ex, decision)
        return
    fwd: Forward = decision
    ex.cluster_name = fwd.cluster.name
    # 3. fault
    if fwd.fault_delay is not None:
        ex.add_flag("DI")
        await asyncio.sleep(fwd.fault_delay)
        if ex.conn.closed or ex.finished:
            ex.abort("DC")
            return
    if fwd.fault_abort is not None:
        ex.labels = (fwd.cluster.label, fwd.cluster.host, fwd.cluster.subset or "unknown")
        ex.reply(fwd.fault_abort, FAULT_ABORT_BODY, "FI")
        return
    # 4. cluster
    cluster = fwd.cluster
    state = states.get(cluster.name)
    if not cluster.defined or state is None:
        ex.labels = ("unknown", cluster.host, cluster.subset or "unknown")
        ex.reply(503, NO_CLUSTER_BODY, "NC")
        return
    # 5. admit
    load = state.load
    refused = await _admit(rt, state, load, fwd.timeout)
    if refused is not None:
        ex.labels = ("unknown", cluster.host, cluster.subset or "unknown")
        if refused == "UT":
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT")
        else:
            load.overflows += 1
            ex.reply(503, OVERFLOW_BODY, "UO", OVERLOADED)
        return
    try:
        # 6 + 7. try, respond
        await _forward(rt, ex, view, fwd, state, extra)
    finally:
        load.release()
    # 8. mirror
    if fwd.mirrors and ex.replay is not None and ex.request_done:
        _mirror(rt, ex, view, fwd, states, extra)


def _xff(ex: Exchange) -> bytes:
    prior = ex.hdict.get("x-forwarded-for")
    value = f"{prior}, {ex.conn.peer}" if prior else ex.conn.peer
    # The header is re-emitted here, so the original line must not be forwarded too.
    ex.headers = [(n, v) for n, v in ex.headers if n != b"x-forwarded-for"]
    return b"x-forwarded-for: " + value.encode("latin-1") + b"\r\n"


def _local_reply(ex: Exchange, reply: LocalReply) -> None:
    headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers]
    if reply.response_headers:
        headers = apply_ops(headers, reply.response_headers)
    ex.reply(reply.status, reply.body, reply.flag, headers)


async def _admit(
    rt: Runtime, state: ClusterState, load: Load, timeout: float | None
) -> str | None:
    """Take a slot in the cluster's connection pool (None), or say why not: "UO" at once
    (Envoy's circuit breakers: max requests; max connections + max pending requests), "UT"
    when the route timeout passed while waiting in the pending queue."""
    if state.max_active is not None and load.inflight >= state.max_active:
        return "UO"
    if state.max_conns is not None and load.inflight >= state.max_conns:
        if state.max_pending is not None and len(load.waiters) >= state.max_pending:
            return "UO"
        fut: asyncio.Future[bool] = rt.loop.create_future()
        load.waiters.append(fut)
        try:
            if timeout is not None:
                await asyncio.wait_for(fut, timeout)
            else:
                await fut
        except TimeoutError:
            return "UT"
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                load.release()  # the slot was handed to us as we were cancelled
            raise
        return None  # the releasing request handed its slot over
    load.inflight += 1
    return None


def _authority(ex: Exchange, view: RequestView, fwd: Forward) -> str:
    """The Host to send: as the client sent it (port included, as Envoy does) unless the
    route rewrote the authority."""
    if fwd.authority == view.host or fwd.authority.lower() == view.host.lower():
        return ex.authority or fwd.authority
    return fwd.authority


def _head(ex: Exchange, method: str, path: str, authority: str, lines: list[bytes]) -> bytes:
    framing = ex.req_framing
    if framing == LENGTH:
        lines.append(b"content-length: " + ex.hdict.get("content-length", "0").encode() + b"\r\n")
    elif framing == CHUNKED:
        lines.append(b"transfer-encoding: chunked\r\n")
    return b"".join(
        [
            f"{method} {path} HTTP/1.1\r\nhost: {authority}\r\n".encode("latin-1"),
            *lines,
            b"\r\n",
        ]
    )


def apply_ops(pairs: list[tuple[bytes, bytes]], ops: HeaderOps) -> list[tuple[bytes, bytes]]:
    """Istio header operations on a header list: set (replace), add (comma-append to an
    existing value, as ``HeaderOps.apply``), remove."""
    out = list(pairs)
    for name, value in ops.set:
        n = name.lower().encode("latin-1")
        out = [(k, v) for k, v in out if k != n]
        out.append((n, value.encode("latin-1")))
    for name, value in ops.add:
        n = name.lower().encode("latin-1")
        for i in range(len(out) - 1, -1, -1):
            if out[i][0] == n:
                out[i] = (n, out[i][1] + b"," + value.encode("latin-1"))
                break
        else:
            out.append((n, value.encode("latin-1")))
    if ops.remove:
        gone = {name.lower().encode("latin-1") for name in ops.remove}
        out = [(k, v) for k, v in out if k not in gone]
    return out


def _request_lines(ex: Exchange, ops: HeaderOps, extra: list[bytes]) -> list[bytes]:
    if not ops:
        return ex.upstream_headers(extra)
    pairs = apply_ops(
        [(n, v) for n, v in ex.headers],
        HeaderOps(
            tuple((n, v) for n, v in ops.set if n.lower() not in ("host", ":authority")),
            tuple((n, v) for n, v in ops.add if n.lower() not in ("host", ":authority")),
            ops.remove,
        ),
    )
    saved = ex.headers
    ex.headers = pairs
    try:
        return ex.upstream_headers(extra)
    finally:
        ex.headers = saved


async def _forward(
    rt: Runtime,
    ex: Exchange,
    view: RequestView,
    fwd: Forward,
    state: ClusterState,
    extra: list[bytes],
) -> None:
    loop = rt.loop
    retry = fwd.retry
    attempts = 1 + max(retry.attempts, 0)
    deadline = loop.time() + fwd.timeout if fwd.timeout else None
    per_try = retry.per_try_timeout
    lines = _request_lines(ex, fwd.request_headers, extra)
    head = _head(ex, ex.method, fwd.path, _authority(ex, view, fwd), lines)
    tried: list[str] = []
    balancer = state.balancer
    load = state.load
    for n in range(attempts):
        if n > 0:
            pause = backoff(n, rt.rng)
            if deadline is not None and loop.time() + pause >= deadline:
                ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT,URX")
                return
            load.retries += 1
            try:
                await asyncio.sleep(pause)
            finally:
                load.retries -= 1
            if ex.conn.closed:
                ex.abort("DC")
                return
        endpoint = balancer.pick(state.healthy, view, rt.rng, tried)
        if endpoint is None:
            ex.labels = ("unknown", state.cluster.host, state.cluster.subset or "unknown")
            ex.reply(503, NO_HEALTHY_UPSTREAM_BODY, "UH" if n == 0 else "UH,URX")
            return
        key = endpoint.key
        tried.append(key)
        ex.labels = state.labels.get(key)
        ex.upstream_host = key
        try_deadline = deadline
        if per_try is not None:
            t = loop.time() + per_try
            try_deadline = t if deadline is None or t < deadline else deadline
        balancer.on_start(key)
        try:
            att = await _try(
                rt, ex, key, endpoint.address, endpoint.port, head, n > 0,
                try_deadline, state.connect_timeout,
            )  # fmt: skip
        finally:
            balancer.on_finish(key)
        if ex.finished:
            if att is not None:
                rt.pool.release(att.conn, False)
            return
        outcome = att.outcome if att is not None else CONNECT_FAILURE
        # Another try is possible: attempts left, the body still at hand, and the cluster's
        # retry budget (connectionPool.http.maxRetries) not used up by other requests.
        more = (
            n + 1 < attempts
            and ex.replayable
            and (state.max_retries is None or load.retries < state.max_retries)
        )
        if outcome > 0:
            assert att is not None
            state.record(key, outcome, time.monotonic())
            retriable = should_retry(retry, outcome, False)
            if more and retriable:
                _drop(rt, att)
                ex.detach()
                continue
            if n > 0 and retriable:
                ex.add_flag("URX")
            await _respond(rt, ex, att, fwd.response_headers, deadline, state.max_per_conn)
            return
        # A local-origin failure: connect failure, reset before the response, timeout.
        state.record(key, None, time.monotonic())
        ex.detach()
        if ex.conn.closed:
            ex.abort("DC")
            return
        kind = _KIND.get(outcome, "reset")
        urx = ",URX" if n > 0 else ""
        if deadline is not None and loop.time() >= deadline:
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT" + urx)
            return
        if more and should_retry(retry, None, True, kind):
            continue
        if outcome == TIMEOUT:
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT" + urx)
        else:
            ex.reply(503, CONNECT_FAILURE_BODY, "UF" + urx)
        return


async def _try(
    rt: Runtime,
    ex: Exchange | None,
    key: str,
    address: str,
    port: int,
    head: bytes,
    replay: bool,
    deadline: float | None,
    connect_timeout: float,
    mirror_body: bytes | None = None,
) -> Attempt | None:
    """One try: a pooled (or new) connection, the request, and the response head.

    A pooled connection the upstream closed while idle fails with nothing received; that is
    no fault of the request (the HTTP/1.1 keep-alive race), so it is retried once on a new
    connection to the same endpoint, as HTTP clients do, without counting as an attempt.
    """
    pool = rt.pool
    loop = rt.loop
    conn = pool.take_idle(key)
    for fresh in (conn is None, True):
        if conn is None:
            timeout = connect_timeout
            if deadline is not None:
                timeout = min(timeout, max(deadline - loop.time(), 0.001))
            conn = await pool.connect(key, address, port, timeout)
            if conn is None:
                return None
        fut: asyncio.Future[None] = loop.create_future()
        att = Attempt(ex, conn, fut)
        conn.begin(att)
        if ex is not None:
            ex.attach(conn, head, replay)
        else:
            conn.send_raw(head + (mirror_body or b""))
        timer = loop.call_at(deadline, att.on_timeout) if deadline is not None else None
        await fut
        if timer is not None:
            timer.cancel()
        if (
            att.outcome == RESET
            and not fresh
            and not att.buf
            and (ex is None or ex.replayable)
        ):
            pool.release(conn, False)
            if ex is not None:
                ex.detach()
            replay = True
            conn = None
            continue
        return att
    return None  # pragma: no cover - the loop always returns


def _drop(rt: Runtime, att: Attempt) -> None:
    """Throw away a response we are going to retry: reuse the connection only if the
    response is already complete."""
    att.discard = True
    rt.pool.release(att.conn, att.complete and att.keep_alive)


async def _respond(
    rt: Runtime,
    ex: Exchange,
    att: Attempt,
    ops: HeaderOps,
    deadline: float | None,
    max_per_conn: int,
) -> None:
    """Stage 7: the upstream response to the client, header operations applied."""
    headers = [(n, v) for n, v in att.headers if n not in HOP_BY_HOP_BYTES and n != b"content-length"]
    if ops:
        headers = apply_ops(headers, ops)
    head = ex.start_response(att.outcome, headers, att.framing, att.length)
    buffered = att.buf
    att.buf = []
    att.committed = True
    conn = att.conn
    if buffered:
        head += b"".join([ex.encode_body(b) for b in buffered])
    ex.conn.write(head)
    if not att.complete and not att.truncated:
        done: asyncio.Future[None] = rt.loop.create_future()
        att.done_fut = done
        timer = None
        if deadline is not None:
            timer = rt.loop.call_at(deadline, _body_timeout, att)
        await done
        if timer is not None:
            timer.cancel()
    reusable = (
        att.complete
        and att.keep_alive
        and not att.truncated
        and (max_per_conn == 0 or conn.served + 1 < max_per_conn)
    )
    rt.pool.release(conn, reusable)
    ex.detach()
    if att.truncated or not att.complete:
        # Headers are out: the only honest thing left is to cut the client's connection
        # (Envoy: UC upstream connection termination / UT timeout).
        late = deadline is not None and rt.loop.time() >= deadline
        ex.abort("UT" if late else "UC")
    else:
        ex.end_response()


def _body_timeout(att: Attempt) -> None:
    att.truncated = True
    att.conn.close(abort=True)
    done = att.done_fut
    if done is not None and not done.done():
        done.set_result(None)


# --- stage 8: mirrors ---------------------------------------------------------------------------


def _shadow(authority: str) -> str:
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit():
        return f"{host}-shadow:{port}"
    return f"{authority}-shadow"


def _mirror(
    rt: Runtime,
    ex: Exchange,
    view: RequestView,
    fwd: Forward,
    states: dict[str, ClusterState],
    extra: list[bytes],
) -> None:
    body = b"".join(ex.replay or ())
    authority = _authority(ex, view, fwd)
    lines = _request_lines(ex, fwd.request_headers, extra)
    if ex.req_framing == CHUNKED:
        # The copy is sent whole, so it gets a plain length.
        lines.append(b"content-length: %d\r\n" % len(body))
        saved = ex.req_framing
        ex.req_framing = 0
        head = _head(ex, ex.method, fwd.path, _shadow(authority), lines)
        ex.req_framing = saved
    else:
        head = _head(ex, ex.method, fwd.path, _shadow(authority), lines)
    for cluster in fwd.mirrors:
        state = states.get(cluster.name)
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
        deadline = rt.loop.time() + 30.0
        att = await _try(
            rt, None, endpoint.key, endpoint.address, endpoint.port, head, False,
            deadline, state.connect_timeout, body,
        )  # fmt: skip
        if att is None:
            return
        att.discard = True
        if not att.complete and att.outcome > 0:
            done: asyncio.Future[None] = rt.loop.create_future()
            att.done_fut = done
            timer = rt.loop.call_at(deadline, _body_timeout, att)
            await done
            timer.cancel()
        rt.pool.release(att.conn, att.complete and att.keep_alive and not att.truncated)
    except Exception:  # a mirror must never hurt anything
        pass
    finally:
        rt.mirrors_in_flight -= 1


# --- inbound ----------------------------------------------------------------------------------


async def handle_inbound(rt: Runtime, ex: Exchange) -> None:
    """Forward to the local app: one try, no routing."""
    if ex.finished:
        return
    extra: list[bytes] = []
    if "x-request-id" not in ex.hdict:
        ex.request_id = new_request_id()
        extra.append(b"x-request-id: " + ex.request_id.encode() + b"\r\n")
    extra.append(_xff(ex))
    url = ex.url
    if url[:1] != b"/":
        view = request_view(ex, None, absolute=True)
        path, authority = view.path, ex.authority
    else:
        path = url.decode("latin-1")
        authority = ex.hdict.get("host", "")
        ex.authority = authority
        ex.path = path
    ex.labels = rt.pod_labels
    ex.upstream_host = rt.app_key
    ex.cluster_name = "inbound"
    if rt.app_port is None:
        ex.reply(503, NO_HEALTHY_UPSTREAM_BODY, "UH")
        return
    head = _head(ex, ex.method, path, authority, ex.upstream_headers(extra))
    att = await _try(rt, ex, rt.app_key, rt.app_address, rt.app_port, head, False, None, 10.0)
    if ex.finished:
        if att is not None:
            rt.pool.release(att.conn, False)
        return
    if att is None or att.outcome <= 0:
        ex.detach()
        if att is not None and att.outcome == TIMEOUT:
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT")
        else:
            ex.reply(503, CONNECT_FAILURE_BODY, "UF")
        return
    await _respond(rt, ex, att, HeaderOps(), None, 0)
