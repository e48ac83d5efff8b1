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
    7. respond  response header operations (and CORS headers; a CORS preflight from an
                allowed origin was answered at stage 2), then the body streams to the client
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
from collections.abc import Coroutine
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
from mesh.routing.paths import needs_normalizing, normalize_path
from mesh.sidecar import cors
from mesh.sidecar.clusters import ClusterState, Load
from mesh.sidecar.http1.client import CONNECT_FAILURE, RESET, TIMEOUT, Attempt, Pool
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.framing import CHUNKED, LENGTH, NO_BODY
from mesh.sidecar.request_id import new_request_id
from mesh.sidecar.telemetry import Telemetry

OVERLOADED = ((b"x-envoy-overloaded", b"true"),)
_KIND = {CONNECT_FAILURE: "connect-failure", RESET: "reset", TIMEOUT: "timeout"}
# Concurrent mirror copies per sidecar; beyond this a copy is skipped (it is best effort).
MAX_MIRRORS_IN_FLIGHT = 256


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
        # Requests read (table, states) together without awaiting in between, and nothing
        # awaits between these two assignments: no request sees one without the other.
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


def request_view(ex: Exchange, port: int | None, absolute: bool = True) -> RequestView | None:
    """Host, port and path of ``ex``. An absolute-form target (``GET http://reviews:9080/x``,
    what the app's HTTP_PROXY client sends to the outbound listener) wins over Host, as
    RFC 9112 3.2.2 says; ``port`` (a gateway's server port) overrides the addressed one.

    The path is normalised as Istio's default does (``mesh.routing.paths``) before anything
    matches on it, and goes upstream so; None when it cannot be (Envoy's 400)."""
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
    if needs_normalizing(path):
        path = normalize_path(path)  # type: ignore[assignment]
        if path is None:
            return None
    ex.authority = authority
    host, addressed_port = split_authority(authority, 80)
    return _new_view(
        host, path, ex.method, ex.hdict, "http", addressed_port if port is None else port,
        ex.conn.peer,
    )  # fmt: skip


def _view_builder() -> Any:
    """``RequestView(host, path, method, headers, scheme, port, source_address)`` without
    the frozen dataclass's ``__init__`` (one ``object.__setattr__`` call per field, ~1 µs a
    request): the slots are filled through their descriptors. Falls back to the constructor
    if the class does not have exactly these slots."""
    names = ("host", "path", "method", "headers", "scheme", "port", "source_address")
    if getattr(RequestView, "__slots__", None) != names or hasattr(RequestView, "__post_init__"):
        return lambda *values: RequestView(*values)
    new = object.__new__
    cls = RequestView
    s_host, s_path, s_method, s_headers, s_scheme, s_port, s_src = (
        getattr(RequestView, n).__set__ for n in names
    )

    def build(host, path, method, headers, scheme, port, source_address):  # type: ignore[no-untyped-def]
        view = new(cls)
        s_host(view, host)
        s_path(view, path)
        s_method(view, method)
        s_headers(view, headers)
        s_scheme(view, scheme)
        s_port(view, port)
        s_src(view, source_address)
        return view

    return build


_new_view = _view_builder()


# --- the routed pipeline -----------------------------------------------------------------------


def start_routed(rt: Runtime, ex: Exchange, server_port: int | None, edge: bool) -> None:
    """Stages 1-8 for one request (outbound: ``server_port`` None; gateway: its server port).

    Synchronous on purpose: the common request (no injected delay, no timeouts, a slot free,
    a pooled connection at hand) is sent upstream right here, and its response is committed
    from the upstream connection's callbacks (``Flight.on_response``), with no task and no
    future. Anything that has to wait (a delay, a timeout, a pending-queue slot, a new
    connection, a retry) continues in a coroutine (``Flight.run_routed`` / ``run_tries``)
    from where it stands.
    """
    table = rt.table
    states = rt.states
    if ex.finished:  # answered already (a broken request body)
        return
    if table is None:
        ex.reply(503, NO_HEALTHY_UPSTREAM_BODY, "UH")
        return
    # 1. view
    extra = _edge_headers(ex) if edge else _added_headers(ex, False)
    view = request_view(ex, server_port)
    if view is None:
        ex.reply(400, b"")  # a path that cannot be normalised (Envoy: 400, keep-alive)
        return
    # 2. decide
    decision = decide(table, view, rt.rng)
    if isinstance(decision, LocalReply):
        _local_reply(ex, decision)
        return
    fwd: Forward = decision
    cluster = fwd.cluster
    ex.cluster_name = cluster.name
    if fwd.cors is not None and "origin" in ex.hdict:
        answer = cors.decide_preflight(fwd.cors, ex.method, ex.hdict)
        if answer is not None:
            ex.reply(200, b"", "", answer)
            return
    flight = Flight(rt, ex, states.get(cluster.name), view, fwd, extra)
    if "x-envoy-upstream-rq-timeout-ms" in ex.hdict:
        flight.timeout = route_timeout(fwd.timeout, ex.hdict)
    if fwd.fault_delay is not None or flight.timeout or fwd.retry.per_try_timeout:
        flight.spawn(flight.run_routed())
        return
    # 3. fault (abort), 4. cluster, 5. admit
    verdict = flight.pre_checks()
    if verdict is not ADMITTED:
        if verdict is WAIT:
            flight.spawn(flight.run_routed())
        return
    # 6. first try, if a pooled connection is at hand
    try:
        flight.first_try()
    except BaseException:
        flight.end()  # a bug must not leak the admission slot
        raise


def route_timeout(configured: float | None, headers: dict[str, str]) -> float | None:
    """The route ``timeout``, or Envoy's per-request ``x-envoy-upstream-rq-timeout-ms``
    override when the request carries a valid one (0 = no timeout)."""
    raw = headers.get("x-envoy-upstream-rq-timeout-ms")
    if raw is None:
        return configured
    try:
        ms = int(raw)
    except ValueError:
        return configured
    if ms < 0:
        return configured
    return ms / 1000.0 if ms else None


ADMITTED = "admitted"
WAIT = "wait"
ANSWERED = "answered"


class Flight:
    """One exchange on its way upstream: everything its tries need, and the callbacks that
    finish it when no coroutine is involved."""

    __slots__ = (
        "rt",
        "ex",
        "state",
        "view",
        "fwd",
        "extra",
        "head",
        "tried",
        "deadline",
        "key",
        "admitted",
        "n",
        "sent",
        "timeout",
        "set_cookie",
    )

    def __init__(
        self,
        rt: Runtime,
        ex: Exchange,
        state: ClusterState | None,
        view: RequestView | None,
        fwd: Forward | None,
        extra: list[bytes],
    ) -> None:
        self.rt = rt
        self.ex = ex
        self.state = state
        self.view = view
        self.fwd = fwd
        self.extra = extra
        self.head = b""
        self.tried: list[str] = []
        self.deadline: float | None = None
        self.key = ""
        self.admitted = False
        self.n = 0
        # The request (and body so far) went to some connection already: a later try must
        # resend the body from the replay copy.
        self.sent = False
        # The route timeout (seconds, None = none), after any per-request override.
        self.timeout: float | None = fwd.timeout if fwd is not None else None
        # A generated consistent-hash cookie, sent back with the response.
        self.set_cookie: bytes | None = None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.rt.loop.create_task(_guarded(self, coro))

    # --- stages 3-5 (synchronous) --------------------------------------------------------

    def pre_checks(self) -> str:
        """Injected abort, undefined cluster, admission: ADMITTED, WAIT or ANSWERED."""
        ex = self.ex
        fwd = self.fwd
        assert fwd is not None
        cluster = fwd.cluster
        if fwd.fault_abort is not None:
            ex.labels = (cluster.label, cluster.host, cluster.subset or "unknown")
            ex.reply(fwd.fault_abort, FAULT_ABORT_BODY, "FI")
            return ANSWERED
        state = self.state
        if not cluster.defined or state is None:
            ex.labels = ("unknown", cluster.host, cluster.subset or "unknown")
            ex.reply(503, NO_CLUSTER_BODY, "NC")
            return ANSWERED
        load = state.load
        if state.max_active is not None and load.inflight >= state.max_active:
            return self._overflow()
        if state.max_conns is not None and load.inflight >= state.max_conns:
            if state.max_pending is not None and len(load.waiters) >= state.max_pending:
                return self._overflow()
            return WAIT
        load.inflight += 1
        self.admitted = True
        return ADMITTED

    def _overflow(self) -> str:
        ex = self.ex
        assert self.fwd is not None and self.state is not None
        cluster = self.fwd.cluster
        ex.labels = ("unknown", cluster.host, cluster.subset or "unknown")
        self.state.load.overflows += 1
        ex.reply(503, OVERFLOW_BODY, "UO", OVERLOADED)
        return ANSWERED

    async def _admit_wait(self) -> bool:
        """Wait in the cluster's pending queue (bounded by the route timeout)."""
        assert self.state is not None
        load = self.state.load
        fut: asyncio.Future[bool] = self.rt.loop.create_future()
        load.waiters.append(fut)
        timeout = self.timeout
        try:
            if timeout is not None:
                await asyncio.wait_for(fut, timeout)
            else:
                await fut
        except TimeoutError:
            ex = self.ex
            ex.labels = ("unknown", self.state.cluster.host, self.state.cluster.subset or "unknown")
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT")
            return False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                load.release()  # the slot was handed to us as we were cancelled
            raise
        self.admitted = True  # the releasing request handed its slot over
        return True

    # --- stage 6 helpers -----------------------------------------------------------------

    def prepare(self) -> None:
        ex = self.ex
        fwd = self.fwd
        if fwd is None:
            return
        ops = fwd.request_headers
        if ops.set or ops.add or ops.remove:
            lines = _request_lines(ex, ops, self.extra)
        else:
            lines = ex.upstream_headers(self.extra)
        view = self.view
        assert view is not None
        if fwd.path != view.path:
            # The route rewrote the path: Envoy keeps the one it matched on.
            lines = [line for line in lines if not line.startswith(b"x-envoy-original-path:")]
            lines.append(b"x-envoy-original-path: " + view.path.encode("latin-1") + b"\r\n")
        self.head = _head(ex, ex.method, fwd.path, _authority(ex, view, fwd), lines)

    def pick(self) -> Any:
        state = self.state
        if state is None:
            return None
        assert self.view is not None
        if state.makes_cookie and self.set_cookie is None:
            conn = self.ex.conn
            made = state.balancer.generated_cookie(self.view, f"{conn.peer}:{conn.peer_port}")
            if made is not None:
                self.view, value = made
                self.set_cookie = b"set-cookie: " + value.encode("latin-1") + b"\r\n"
        return state.balancer.pick(state.healthy, self.view, self.rt.rng, self.tried)

    def no_healthy(self) -> None:
        assert self.state is not None
        cluster = self.state.cluster
        self.ex.labels = ("unknown", cluster.host, cluster.subset or "unknown")
        self.ex.reply(503, NO_HEALTHY_UPSTREAM_BODY, "UH" if self.n == 0 else "UH,URX")

    def more(self) -> bool:
        """Another try is possible: attempts left, the body still at hand, and the cluster's
        retry budget (connectionPool.http.maxRetries) not used up by other requests."""
        fwd = self.fwd
        state = self.state
        if fwd is None or state is None:
            return False
        return (
            self.n + 1 < 1 + max(fwd.retry.attempts, 0)
            and self.ex.replayable
            and (state.max_retries is None or state.load.retries < state.max_retries)
        )

    def first_try(self) -> None:
        """Try 0 without a coroutine when a pooled connection is at hand."""
        self.prepare()
        endpoint = self.pick()
        if endpoint is None:
            self.no_healthy()
            self.end()
            return
        conn = self.rt.pool.take_idle(endpoint.key)
        if conn is None:
            self.spawn(self.run_tries(endpoint))
            return
        self._begin(endpoint)
        att = Attempt(self.ex, conn, None)
        att.flight = self
        conn.begin(att)
        self.ex.attach(conn, self.head, False)
        self.sent = True

    def _begin(self, endpoint: Any) -> None:
        key = endpoint.key
        self.key = key
        self.tried.append(key)
        ex = self.ex
        assert self.state is not None
        ex.labels = self.state.labels.get(key)
        ex.upstream_host = key
        self.state.balancer.on_start(key)

    def on_response(self, att: Attempt) -> None:
        """The first try's response head (or failure), from the connection's callbacks."""
        try:
            self._on_response(att)
        except Exception as exc:
            self.crash(exc, att)

    def on_done(self, att: Attempt) -> None:
        """The committed response ended: complete, cut, or timed out."""
        try:
            self._on_done(att)
        except Exception as exc:
            self.crash(exc, att)

    def crash(self, exc: Exception, att: Attempt) -> None:
        """A bug in a callback: it costs this exchange, never the connection or the proxy."""
        ex = self.ex
        ex.conn.server.on_handler_error(exc)
        att.flight = None
        if att.conn is not None:
            self.rt.pool.release(att.conn, False)
        ex.detach()
        if not ex.finished:
            if ex.started:
                ex.abort()
            else:
                ex.reply(500, b"internal proxy error", close=True)
        self.end()

    def _on_response(self, att: Attempt) -> None:
        state = self.state
        ex = self.ex
        if state is None:
            self._inbound_response(att)
            return
        state.balancer.on_finish(self.key)
        if ex.finished or ex.conn.closed:
            # Answered already, or the client left (DC): nothing more to try.
            self.rt.pool.release(att.conn, False)
            if not ex.finished:
                ex.abort("DC")
            self.end()
            return
        outcome = att.outcome
        if outcome == RESET and not att.buf and ex.replayable and att.conn.served > 0:
            # A pooled connection the upstream had closed: try 0 again on a new one.
            self.rt.pool.release(att.conn, False)
            ex.detach()
            self.tried.clear()
            self.spawn(self.run_tries(None))
            return
        if self.judge(att):
            self.n += 1
            self.spawn(self.run_tries(None))

    def judge(self, att: Attempt) -> bool:
        """Outcome of one try: True = try again; else the exchange is answered/committed."""
        ex = self.ex
        state = self.state
        fwd = self.fwd
        assert state is not None and fwd is not None
        outcome = att.outcome
        retry = fwd.retry
        if outcome > 0:
            if state.outlier.settings is not None:  # outlier detection configured
                state.record(self.key, outcome, time.monotonic())
            retriable = should_retry(retry, outcome, False)
            if retriable and self.more():
                _drop(self.rt, att)
                ex.detach()
                return True
            if self.n > 0 and retriable:
                ex.add_flag("URX")
            self.commit(att)
            return False
        # A local-origin failure: connect failure, reset before the response, timeout.
        state.record(self.key, None, time.monotonic())
        if att.conn is not None:
            self.rt.pool.release(att.conn, False)
        ex.detach()
        if ex.conn.closed:
            ex.abort("DC")
            self.end()
            return False
        kind = _KIND.get(outcome, "reset")
        urx = ",URX" if self.n > 0 else ""
        if self.deadline is not None and self.rt.loop.time() >= self.deadline:
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT" + urx)
            self.end()
            return False
        if self.more() and should_retry(retry, None, True, kind):
            return True
        if outcome == TIMEOUT:
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT" + urx)
        else:
            ex.reply(503, CONNECT_FAILURE_BODY, "UF" + urx)
        self.end()
        return False

    # --- stage 7 ----------------------------------------------------------------------------

    def commit(self, att: Attempt) -> None:
        """The response head (and what body arrived) to the client; the rest streams from
        the connection's callbacks and ``on_done`` finishes."""
        ex = self.ex
        fwd = self.fwd
        lines = att.lines
        ops = fwd.response_headers if fwd is not None else None
        if fwd is not None and ((ops.set or ops.add or ops.remove) or fwd.cors is not None):
            headers = att.header_pairs()
            if fwd.response_headers:
                headers = apply_ops(headers, fwd.response_headers)
            if fwd.cors is not None:
                origin = ex.hdict.get("origin")
                if origin is not None and cors.origin_allowed(fwd.cors, origin):
                    headers += cors.response_headers(fwd.cors, origin)
            lines = [n + b": " + v + b"\r\n" for n, v in headers]
        if self.set_cookie is not None:
            lines = [*lines, self.set_cookie]
        upgraded = att.upgraded
        if upgraded is not None:
            # A 101 to a WebSocket upgrade: no route timeout applies from here, as Envoy's
            # does not to an upgraded stream (the stream idle timeout does); ``_on_done``
            # ends the exchange when either side closes.
            head = ex.start_tunnel(lines, upgraded)
        else:
            head = ex.start_response(att.outcome, lines, att.framing, att.length)
        buffered = att.buf
        att.buf = []
        att.committed = True
        att.flight = self
        if buffered:
            head += b"".join([ex.encode_body(b) for b in buffered])
        ex.conn.write(head)
        if att.complete or att.truncated:
            try:
                self._on_done(att)  # as ``on_done``, one call less
            except Exception as exc:
                self.crash(exc, att)
        elif self.deadline is not None and upgraded is None:
            att.timer = self.rt.loop.call_at(self.deadline, _body_timeout, att)

    def _on_done(self, att: Attempt) -> None:
        if att.timer is not None:
            att.timer.cancel()
            att.timer = None
        att.flight = None
        ex = self.ex
        conn = att.conn
        state = self.state
        max_per_conn = state.max_per_conn if state is not None else 0
        reusable = (
            att.complete
            and att.keep_alive
            and not att.truncated
            # An early answer (413, say) while the request body was still streaming: the
            # upstream still expects the rest of it on this connection.
            and ex.request_done
            and (max_per_conn == 0 or conn.served + 1 < max_per_conn)
        )
        if state is not None:
            # This cluster's connectionPool limits go with the connection into the pool.
            conn.idle_limit = state.idle_timeout
            conn.max_duration = state.max_duration
        self.rt.pool.release(conn, reusable)
        ex.sink = None
        if att.upgraded is not None:
            ex.close_tunnel()
        elif att.truncated or not att.complete:
            # Headers are out: the only honest thing left is to cut the client's connection
            # (Envoy: UC upstream connection termination / UT timeout).
            late = self.deadline is not None and self.rt.loop.time() >= self.deadline
            ex.abort("UT" if late else "UC")
        else:
            ex.end_response()
        self.end()

    def end(self) -> None:
        """Release the admission slot; stage 8, mirrors."""
        if self.admitted:
            self.admitted = False
            assert self.state is not None
            self.state.load.release()
            fwd = self.fwd
            ex = self.ex
            if (
                fwd is not None
                and fwd.mirrors
                and ex.replay is not None
                and ex.request_done
                and ex.upgrade is None  # a WebSocket is not mirrored
            ):
                _mirror(self.rt, ex, self.view, fwd, self.rt.states, self.extra)  # type: ignore[arg-type]

    # --- the coroutine path -----------------------------------------------------------------

    async def run_routed(self) -> None:
        """Stages 3-8 when something has to wait."""
        ex = self.ex
        fwd = self.fwd
        assert fwd is not None
        if fwd.fault_delay is not None:
            ex.add_flag("DI")
            await asyncio.sleep(fwd.fault_delay)
            if ex.conn.closed or ex.finished:
                ex.abort("DC")
                return
        verdict = self.pre_checks()
        if verdict is ANSWERED:
            return
        if verdict is WAIT and not await self._admit_wait():
            return
        if self.timeout:
            self.deadline = self.rt.loop.time() + self.timeout
        self.prepare()
        await self.run_tries(None)

    async def run_tries(self, endpoint: Any) -> None:
        """Stage 6 from try ``self.n`` on, each awaited (``_try``); ``endpoint``: the one
        already picked for this try, if any."""
        rt = self.rt
        loop = rt.loop
        ex = self.ex
        fwd = self.fwd
        state = self.state
        assert fwd is not None and state is not None
        per_try = fwd.retry.per_try_timeout
        while True:
            if self.n > 0:
                pause = backoff(self.n, rt.rng)
                if self.deadline is not None and loop.time() + pause >= self.deadline:
                    ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT,URX")
                    self.end()
                    return
                state.load.retries += 1
                try:
                    await asyncio.sleep(pause)
                finally:
                    state.load.retries -= 1
                if ex.conn.closed or ex.finished:
                    ex.abort("DC")
                    self.end()
                    return
            if endpoint is None:
                endpoint = self.pick()
            if endpoint is None:
                self.no_healthy()
                self.end()
                return
            self._begin(endpoint)
            try_deadline = self.deadline
            if per_try is not None:
                t = loop.time() + per_try
                try_deadline = t if try_deadline is None or t < try_deadline else try_deadline
            try:
                replay = self.sent
                self.sent = True
                att = await _try(
                    rt, ex, endpoint.key, endpoint.address, endpoint.port, self.head,
                    replay, try_deadline, state.connect_timeout,
                )  # fmt: skip
            finally:
                state.balancer.on_finish(self.key)
            if ex.finished:
                if att is not None:
                    rt.pool.release(att.conn, False)
                self.end()
                return
            if att is None:
                att = Attempt(ex, None, None)  # type: ignore[arg-type]
                att.outcome = CONNECT_FAILURE
            if not self.judge(att):
                return
            self.n += 1
            endpoint = None

    # --- inbound ------------------------------------------------------------------------

    def _inbound_response(self, att: Attempt) -> None:
        ex = self.ex
        rt = self.rt
        if ex.finished:
            rt.pool.release(att.conn, False)
            return
        if att.outcome == RESET and not att.buf and ex.replayable and att.conn.served > 0:
            rt.pool.release(att.conn, False)
            ex.detach()
            self.spawn(self.run_inbound())
            return
        self._inbound_judge(att)

    def _inbound_judge(self, att: Attempt) -> None:
        ex = self.ex
        if att.outcome > 0:
            self.commit(att)
            return
        if att.conn is not None:
            self.rt.pool.release(att.conn, False)
        ex.detach()
        if att.outcome == TIMEOUT:
            ex.reply(504, UPSTREAM_TIMEOUT_BODY, "UT")
        else:
            ex.reply(503, CONNECT_FAILURE_BODY, "UF")

    async def run_inbound(self) -> None:
        rt = self.rt
        ex = self.ex
        assert rt.app_port is not None
        replay = self.sent
        self.sent = True
        att = await _try(rt, ex, rt.app_key, rt.app_address, rt.app_port, self.head, replay,
                         None, 10.0)  # fmt: skip
        if ex.finished:
            if att is not None:
                rt.pool.release(att.conn, False)
            return
        if att is None:
            att = Attempt(ex, None, None)  # type: ignore[arg-type]
            att.outcome = CONNECT_FAILURE
        self._inbound_judge(att)


async def _guarded(flight: Flight, coro: Coroutine[Any, Any, None]) -> None:
    """Run a flight's coroutine; whatever happens, the exchange ends and the slot is freed."""
    ex = flight.ex
    try:
        await coro
    except Exception as exc:  # a bug must cost one request, never the sidecar
        ex.conn.server.on_handler_error(exc)
        if not ex.finished:
            if ex.started:
                ex.abort()
            else:
                ex.reply(500, b"internal proxy error", close=True)
    finally:
        if not ex.finished and not (ex.started and ex.sink is not None):
            ex.abort()  # nothing else would ever finish it
        if ex.finished:
            flight.end()


# Request headers an edge proxy does not take from a client outside the mesh: Envoy's
# ``cleanInternalHeaders`` for an edge request (``use_remote_address``, a client that is not
# internal: with ``internal_address_config`` unset, no client is, as in Envoy since 1.36 and
# in Istio's ingress gateway), plus x-envoy-internal, which every listener strips.
EDGE_STRIPPED: frozenset[str] = frozenset(
    {
        "x-envoy-internal",
        "x-envoy-decorator-operation",
        "x-envoy-downstream-service-cluster",
        "x-envoy-downstream-service-node",
        "x-envoy-retriable-status-codes",
        "x-envoy-retriable-header-names",
        "x-envoy-retry-on",
        "x-envoy-retry-grpc-on",
        "x-envoy-max-retries",
        "x-envoy-upstream-alt-stat-name",
        "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-upstream-rq-per-try-timeout-ms",
        "x-envoy-upstream-rq-timeout-alt-response",
        "x-envoy-expected-rq-timeout-ms",
        "x-envoy-force-trace",
        "x-envoy-ip-tags",
        "x-envoy-original-url",
        "x-envoy-hedge-on-per-try-timeout",
    }
)
# Set by the edge proxy itself, whatever the client sent: a new request id for every edge
# request (Istio leaves preserve_external_request_id off), the scheme it was received on,
# and the client's address.
_EDGE_REPLACED: frozenset[str] = EDGE_STRIPPED | {
    "x-request-id",
    "x-forwarded-proto",
    "x-envoy-external-address",
}


def _edge_headers(ex: Exchange) -> list[bytes]:
    """The ingress gateway's header hygiene (Istio: ``use_remote_address: true``, no trusted
    hops): the client's internal-only headers out (before routing sees them), a fresh
    ``x-request-id``, ``x-forwarded-proto``, the client appended to ``x-forwarded-for`` and
    named in ``x-envoy-external-address``. Returns the header lines to add upstream."""
    hdict = ex.hdict
    gone = [name for name in hdict if name in _EDGE_REPLACED]
    if gone:
        names = {name.encode("latin-1") for name in gone}
        ex.headers = [(n, v) for n, v in ex.headers if n not in names]
        hdict = ex.hdict = {k: v for k, v in hdict.items() if k not in gone}
    request_id = ex.request_id = new_request_id()
    hdict["x-request-id"] = request_id
    peer = ex.conn.peer
    return [
        b"x-request-id: " + request_id.encode() + b"\r\n",
        _xff(ex),
        b"x-forwarded-proto: http\r\n",
        b"x-envoy-external-address: " + peer.encode("latin-1") + b"\r\n",
    ]


def _added_headers(ex: Exchange, xff: bool) -> list[bytes]:
    """Header lines the proxy adds upstream: ``x-request-id`` when the client sent none, and
    (``xff``: inbound and gateway listeners) the client's address on ``x-forwarded-for``."""
    extra: list[bytes] = []
    if "x-request-id" not in ex.hdict:
        ex.request_id = new_request_id()
        extra.append(b"x-request-id: " + ex.request_id.encode() + b"\r\n")
    if xff:
        extra.append(_xff(ex))
    return extra


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


def _authority(ex: Exchange, view: RequestView, fwd: Forward) -> str:
    """The Host to send: as the client sent it (port included, as Envoy does) unless the
    route rewrote the authority."""
    if fwd.authority == view.host or fwd.authority.lower() == view.host.lower():
        return ex.authority or fwd.authority
    return fwd.authority


def _head(
    ex: Exchange,
    method: str,
    path: str,
    authority: str,
    lines: list[bytes],
    framing: int | None = None,
) -> bytes:
    """The upstream request head; the body keeps the client's framing unless ``framing``
    says otherwise (a mirror copy is sent whole, with its own length line in ``lines``)."""
    if framing is None:
        framing = ex.req_framing
    if framing == LENGTH:
        # The length llhttp framed the body by, written plainly ("005" is 5).
        lines.append(b"content-length: %d\r\n" % int(ex.hdict.get("content-length", "0")))
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
        if att.outcome == RESET and not fresh and not att.buf and (ex is None or ex.replayable):
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
    ex = att.ex
    done = ex is None or ex.request_done
    rt.pool.release(att.conn, att.complete and att.keep_alive and done)


def _body_timeout(att: Attempt) -> None:
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
        head = _head(ex, ex.method, fwd.path, _shadow(authority), lines, NO_BODY)
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


def start_inbound(rt: Runtime, ex: Exchange) -> None:
    """Forward to the local app: one try, no routing; synchronous when a pooled connection
    to the app is at hand."""
    if ex.finished:
        return
    extra = _added_headers(ex, True)
    url = ex.url
    if url[:1] != b"/":
        view = request_view(ex, None, absolute=True)
        if view is None:
            ex.reply(400, b"")
            return
        path, authority = view.path, ex.authority
    else:
        path = url.decode("latin-1")
        if needs_normalizing(path):
            normal = normalize_path(path)
            if normal is None:
                ex.reply(400, b"")
                return
            path = normal
        authority = ex.hdict.get("host", "")
        ex.authority = authority
    ex.labels = rt.pod_labels
    ex.upstream_host = rt.app_key
    ex.cluster_name = "inbound"
    if rt.app_port is None:
        ex.reply(503, NO_HEALTHY_UPSTREAM_BODY, "UH")
        return
    flight = Flight(rt, ex, None, None, None, extra)
    flight.head = _head(ex, ex.method, path, authority, ex.upstream_headers(extra))
    conn = rt.pool.take_idle(rt.app_key)
    if conn is None:
        flight.spawn(flight.run_inbound())
        return
    att = Attempt(ex, conn, None)
    att.flight = flight
    conn.begin(att)
    ex.attach(conn, flight.head, False)
    flight.sent = True
