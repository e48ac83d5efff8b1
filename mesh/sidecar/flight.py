"""Stages 3-8 of one exchange on its way upstream: ``Flight``.

Its tries run on two paths that share every decision. The synchronous fast path sends try 0
from the listener's handler when a pooled connection is at hand, and the connection's
callbacks bring the answer back (``on_response``, then ``on_done``): no task, no future. Any
try that must wait (a fault delay, a timeout, a pending-queue slot, a new connection, a retry,
the keep-alive race) runs in the coroutine ``run_tries``, from where the fast path stood.
Both judge a try with ``judge`` (``mesh.resilience.verdict`` decides: retry, commit, local
reply), commit with ``commit`` and finish with ``_on_done``. The inbound listener's flight is
the same with no cluster: one try to the pod's app, no retry policy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from mesh.resilience.retry import NO_RETRY, backoff
from mesh.resilience.verdict import (
    COMMIT,
    CONNECT_FAILURE,
    RESET,
    RETRY,
    Verdict,
    backoff_too_late,
    stale,
    verdict,
)
from mesh.routing.decision import Forward, HeaderOps, RequestView
from mesh.sidecar import cors, replies
from mesh.sidecar.clusters import ClusterState
from mesh.sidecar.forwarding import apply_ops, request_head, request_lines, upstream_authority
from mesh.sidecar.http1.client import Attempt, UpstreamConn
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.framing import reset_transport
from mesh.sidecar.mirror import mirror
from mesh.sidecar.runtime import Runtime
from mesh.sidecar.tries import body_timeout, drop, try_once

# pre_checks' answers.
ADMITTED = "admitted"
WAIT = "wait"
ANSWERED = "answered"
NO_OPS = HeaderOps()
# The inbound hop's connect timeout (Istio's default tcp.connectTimeout).
APP_CONNECT_TIMEOUT = 10.0


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
        "endpoint",
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
        self.endpoint: Any = None
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
            self._unknown_labels()
            replies.send(ex, replies.FAULT_ABORT, status=fwd.fault_abort)
            return ANSWERED
        state = self.state
        if not cluster.defined or state is None:
            self._unknown_labels()
            replies.send(ex, replies.NO_CLUSTER)
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

    def _unknown_labels(self) -> None:
        """No endpoint answered: the destination workload is unknown (Istio's labels)."""
        state = self.state
        if state is not None:
            self.ex.labels = state.unknown_labels
        else:
            assert self.fwd is not None
            self.ex.labels = self.rt.telemetry.source_prefix(self.fwd.cluster.host)

    def _overflow(self) -> str:
        assert self.state is not None
        self._unknown_labels()
        self.state.load.overflows += 1
        replies.send(self.ex, replies.OVERFLOW)
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
            self._unknown_labels()
            replies.send(self.ex, replies.UPSTREAM_TIMEOUT)
            return False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                load.release()  # the slot was handed to us as we were cancelled
            raise
        self.admitted = True  # the releasing request handed its slot over
        return True

    # --- stage 6: tries ------------------------------------------------------------------

    def prepare(self) -> None:
        ex = self.ex
        fwd = self.fwd
        if fwd is None:
            return
        ops = fwd.request_headers
        if ops.set or ops.add or ops.remove:
            lines = request_lines(ex, ops, self.extra)
        else:
            lines = ex.upstream_headers(self.extra)
        view = self.view
        assert view is not None
        if fwd.path != view.path:
            # The route rewrote the path: Envoy keeps the one it matched on.
            lines = [line for line in lines if not line.startswith(b"x-envoy-original-path:")]
            lines.append(b"x-envoy-original-path: " + view.path.encode("latin-1") + b"\r\n")
        self.head = request_head(ex, ex.method, fwd.path, upstream_authority(ex, view, fwd), lines)

    def pick(self) -> Any:
        state = self.state
        if state is None:
            return self.rt.app
        assert self.view is not None
        if state.makes_cookie and self.set_cookie is None:
            conn = self.ex.conn
            # Only a consistent hash on a cookie with a ttl makes one (``makes_cookie``).
            balancer: Any = state.balancer
            made = balancer.generated_cookie(self.view, f"{conn.peer}:{conn.peer_port}")
            if made is not None:
                self.view, value = made
                self.set_cookie = b"set-cookie: " + value.encode("latin-1") + b"\r\n"
        return state.balancer.pick(state.healthy, self.view, self.rt.rng, self.tried)

    def no_healthy(self) -> None:
        self._unknown_labels()
        replies.send(self.ex, replies.NO_HEALTHY_UPSTREAM, "UH" if self.n == 0 else "UH,URX")

    def first_try(self) -> None:
        """Try 0 without a coroutine when a pooled connection is at hand."""
        self.prepare()
        endpoint = self.pick()
        if endpoint is None:
            self.no_healthy()
            self.end()
            return
        security = self.rt.security
        tls = self.upstream_tls(endpoint) if security is not None else None
        conn = self.rt.pool.take_idle(endpoint.key if tls is None else tls.pool_key)
        if conn is None:
            self.spawn(self.run_tries(endpoint))
            return
        self.send_on(conn, endpoint)

    def upstream_tls(self, endpoint: Any) -> Any:
        """The TLS of a connection to ``endpoint`` (``mesh.sidecar.secure.UpstreamTLS``),
        None: plaintext (and always for the inbound hop to the pod's app)."""
        security = self.rt.security
        fwd = self.fwd
        if security is None or fwd is None or not security.plan:
            return None
        return security.upstream(fwd.cluster.name, endpoint.key)

    def send_on(self, conn: UpstreamConn, endpoint: Any) -> None:
        """Send this try on a pooled connection; its callbacks bring the answer back."""
        self._begin(endpoint)
        att = Attempt(self.ex, conn, None)
        att.flight = self
        conn.begin(att)
        self.ex.attach(conn, self.head, self.sent)
        self.sent = True

    def _begin(self, endpoint: Any) -> None:
        key = endpoint.key
        self.key = key
        self.endpoint = endpoint
        state = self.state
        if state is None:
            return  # the inbound hop: labels and host were set when it started
        self.tried.append(key)
        ex = self.ex
        ex.labels = state.labels.get(key)
        ex.upstream_host = key
        state.balancer.on_start(key)

    def _finish_try(self) -> None:
        if self.state is not None:
            self.state.balancer.on_finish(self.key)

    def on_response(self, att: Attempt) -> None:
        """A try's response head (or failure), from the connection's callbacks."""
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
                replies.send(ex, replies.INTERNAL_ERROR)
        self.end()

    def _on_response(self, att: Attempt) -> None:
        ex = self.ex
        state = self.state
        if state is not None:
            state.balancer.on_finish(self.key)
        if ex.finished or ex.conn.closed:
            # Answered already, or the client left (DC): nothing more to try.
            self.rt.pool.release(att.conn, False)
            if not ex.finished:
                ex.abort("DC")
            self.end()
            return
        if att.outcome < 0 and stale(
            att.outcome, bool(att.buf), ex.replayable, att.conn.served > 0
        ):
            # The keep-alive race: this try again, on a new connection (``try_once``).
            self.rt.pool.release(att.conn, False)
            ex.detach()
            self.spawn(self.run_tries(self.endpoint, fresh=True))
            return
        if self.judge(att):
            self.n += 1
            self.spawn(self.run_tries(None))

    def judge(self, att: Attempt) -> bool:
        """The verdict on one try, acted on: True = try again; else the exchange is committed
        or answered locally (and its slot released)."""
        ex = self.ex
        state = self.state
        fwd = self.fwd
        outcome = att.outcome
        if state is not None and (outcome <= 0 or state.outlier.settings is not None):
            state.record(self.key, outcome if outcome > 0 else None, time.monotonic())
        if outcome <= 0:
            if att.conn is not None:
                self.rt.pool.release(att.conn, False)
            ex.detach()
            if ex.conn.closed:
                ex.abort("DC")
                self.end()
                return False
        policy = fwd.retry if fwd is not None else NO_RETRY
        budget = (
            state is None or state.max_retries is None or state.load.retries < state.max_retries
        )
        # The clock matters to a local failure only (a deadline passed); an answer is judged
        # on its status alone.
        now = self.rt.loop.time() if outcome <= 0 else 0.0
        # ``ex.replay is not None`` is ``ex.replayable`` without a property call per request.
        replayable = ex.replay is not None
        decided = verdict(outcome, self.n, policy, self.deadline, now, replayable, budget)
        if decided.action is RETRY:
            if outcome > 0:
                drop(self.rt.pool, att)
                ex.detach()
            return True
        if decided.action is COMMIT:
            if decided.flag:
                ex.add_flag(decided.flag)
            self.commit(att)
            return False
        if self.rt.kube_proxy:
            # kube-proxy has no 503 page: the app sees the failed connection (curl: 000).
            transport = ex.conn.transport  # type: ignore[attr-defined]
            if transport is not None:
                reset_transport(transport)
            ex.abort(decided.flag)
            self.end()
            return False
        if outcome == RESET and decided.flag.startswith("UF") and self._reset_by_strict():
            # A plaintext try reset by a server that requires mTLS: Envoy's "connection
            # termination" (UC), as ``mesh.security.mtls.connect`` says.
            decided = Verdict(decided.action, decided.status, "UC" + decided.flag[2:])
        replies.send_verdict(ex, decided)
        self.end()
        return False

    def _reset_by_strict(self) -> bool:
        security = self.rt.security
        return (
            security is not None
            and self.key in security.strict_endpoints
            and self.upstream_tls(self.endpoint) is None
        )

    # --- stage 7 ----------------------------------------------------------------------------

    def commit(self, att: Attempt) -> None:
        """The response head (and what body arrived) to the client; the rest streams from
        the connection's callbacks and ``on_done`` finishes."""
        ex = self.ex
        fwd = self.fwd
        lines = att.lines
        ops = fwd.response_headers if fwd is not None else NO_OPS
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
            att.timer = self.rt.loop.call_at(self.deadline, body_timeout, att)

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
                mirror(self.rt, ex, self.view, fwd, self.extra)  # type: ignore[arg-type]

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
        checked = self.pre_checks()
        if checked is ANSWERED:
            return
        if checked is WAIT and not await self._admit_wait():
            return
        if self.timeout:
            self.deadline = self.rt.loop.time() + self.timeout
        self.prepare()
        await self.run_tries(None)

    async def run_tries(self, endpoint: Any, fresh: bool = False) -> None:
        """Stage 6 from try ``self.n`` on, each awaited (``try_once``); ``endpoint``: the one
        already picked for this try, if any; ``fresh``: on a new connection."""
        rt = self.rt
        loop = rt.loop
        ex = self.ex
        state = self.state
        per_try = self.fwd.retry.per_try_timeout if self.fwd is not None else None
        connect_timeout = state.connect_timeout if state is not None else APP_CONNECT_TIMEOUT
        while True:
            if self.n > 0:
                assert state is not None  # only a routed flight retries
                pause = backoff(self.n, rt.rng)
                if backoff_too_late(self.deadline, loop.time(), pause):
                    replies.send(ex, replies.UPSTREAM_TIMEOUT, "UT,URX")
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
                att = await try_once(rt.pool, loop, ex, endpoint, self.head, replay,
                                     try_deadline, connect_timeout, fresh=fresh,
                                     tls=self.upstream_tls(endpoint))  # fmt: skip
            finally:
                self._finish_try()
            fresh = False
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
                replies.send(ex, replies.INTERNAL_ERROR)
    finally:
        if not ex.finished and not (ex.started and ex.sink is not None):
            ex.abort()  # nothing else would ever finish it
        if ex.finished:
            flight.end()
