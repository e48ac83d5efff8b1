"""Traces as Envoy's Zipkin tracer makes them: b3 context in, spans out, off the hot path.

Primitive: ``Tracer``, one per proxy.

- ``outbound(ex, route)`` (the outbound listener and the gateway): the request's b3 context
  (what the app propagated; none: a new trace, sampled at ``sampling`` %), a child context
  for this hop's CLIENT span, and the header lines that carry it upstream (the incoming b3
  headers are replaced, as Envoy does);
- ``inbound(ex)`` (the inbound listener): the SERVER span shares the caller's client span id
  (Envoy's ``shared_span_context``); a request without a context starts a trace here and the
  app gets its headers;
- ``finished(ex, reporter, ms)`` (from telemetry, per sampled request): one tuple appended,
  no formatting; ``drain()`` (housekeeping, 4 x a second) turns the tuples into Zipkin spans
  (``mesh.telemetry.zipkin``) and hands them to the ``SpanSender``, which batches them to
  the collector. A full queue drops spans (counted), never a request.

Sampling: ``PILOT_TRACE_SAMPLING`` (percent, 0-100, Istio's pilot knob of the same name;
default 100 in the lab). ``MESH_TELEMETRY=off`` turns metrics and traces off altogether (the
benchmark's baseline).
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mesh.telemetry import b3, zipkin
from mesh.telemetry.b3 import TraceContext

if TYPE_CHECKING:
    from mesh.sidecar.http1.exchange import Exchange
    from mesh.spansender import SpanSender

ENV_SAMPLING = "PILOT_TRACE_SAMPLING"
ENV_TELEMETRY = "MESH_TELEMETRY"
DEFAULT_SAMPLING = 100.0
# Finished requests waiting for ``drain`` (4 x a second): beyond this they are dropped.
MAX_PENDING = 2000
B3_BYTES = frozenset(h.encode("latin-1") for h in b3.HEADERS)


def sampling_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``PILOT_TRACE_SAMPLING`` as a percentage in [0, 100]; the lab's 100 when unset or bad."""
    raw = (environ if environ is not None else os.environ).get(ENV_SAMPLING, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_SAMPLING
    return min(100.0, max(0.0, value)) if value == value else DEFAULT_SAMPLING


def telemetry_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when ``MESH_TELEMETRY`` is ``off`` (or ``0``/``false``)."""
    raw = (environ if environ is not None else os.environ).get(ENV_TELEMETRY, "on")
    return raw.strip().lower() not in ("off", "0", "false", "no")


def context_lines(ctx: TraceContext) -> list[bytes]:
    return [f"{n}: {v}\r\n".encode("latin-1") for n, v in b3.propagation_headers(ctx)]


def strip_b3(ex: Exchange) -> None:
    """Drop the request's b3 headers (this proxy sends its own)."""
    ex.headers = [(n, v) for n, v in ex.headers if n not in B3_BYTES]


class Tracer:
    """b3 in, spans out, for one proxy."""

    def __init__(
        self,
        proxy: zipkin.ProxyInfo,
        sender: SpanSender | None,
        rng: random.Random,
        *,
        sampling: float = DEFAULT_SAMPLING,
        inbound_name: str = "",
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.proxy = proxy
        self.sender = sender
        self.rng = rng
        self.sampling = sampling
        # The inbound listener's span name (Istio's decorator for the pod's own service).
        self.inbound_name = inbound_name
        self.max_pending = max_pending
        # Spans are recorded only when there is a collector to send them to; the context
        # is propagated either way.
        self.records = sender is not None
        self.pending: list[tuple[Any, ...]] = []
        self.dropped = 0
        self.malformed = 0
        self._names: dict[tuple[str, int], str] = {}
        # Monotonic -> epoch microseconds (spans carry wall-clock start times).
        self._offset = time.time() - time.monotonic()

    # --- the request path ---------------------------------------------------------------

    def _incoming(self, ex: Exchange) -> TraceContext | None:
        hdict = ex.hdict
        if b3.TRACE_ID not in hdict and b3.SINGLE not in hdict:
            return None
        try:
            return b3.parse(hdict)
        except b3.B3Error:
            # A broken context is no context: a new trace, and the bad headers go.
            self.malformed += 1
            strip_b3(ex)
            return None

    def _decide(self, ctx: TraceContext) -> TraceContext:
        if ctx.sampled is not None or ctx.debug:
            return ctx
        sampled = b3.should_sample(self.sampling, self.rng)
        return TraceContext(ctx.trace_id, ctx.span_id, ctx.parent_id, sampled, ctx.debug)

    def outbound(self, ex: Exchange) -> list[bytes]:
        """The CLIENT span's context for ``ex`` (kept on ``ex.trace`` when sampled) and the
        header lines that carry it upstream."""
        ctx = self._incoming(ex)
        if ctx is None:
            ctx = b3.new_trace(self.rng, sampled=b3.should_sample(self.sampling, self.rng))
        else:
            strip_b3(ex)
            ctx = b3.child(self._decide(ctx), self.rng)
        if self.records and ctx.recorded:
            ex.trace = ctx
        return context_lines(ctx)

    def inbound(self, ex: Exchange) -> list[bytes]:
        """The SERVER span's context (the caller's, shared); header lines for the app only
        when the trace starts here."""
        ctx = self._incoming(ex)
        lines: list[bytes] = []
        if ctx is None:
            ctx = b3.new_trace(self.rng, sampled=b3.should_sample(self.sampling, self.rng))
            lines = context_lines(ctx)
            ex.trace_root = True
        elif ctx.sampled is None and not ctx.debug:
            ctx = self._decide(ctx)
            if b3.SINGLE not in ex.hdict:
                lines = [b"x-b3-sampled: " + (b"1" if ctx.sampled else b"0") + b"\r\n"]
        if self.records and ctx.recorded:
            ex.trace = ctx
        return lines

    def finished(self, ex: Exchange, reporter: str, ms: float) -> None:
        """A sampled request ended: its fields, for ``drain``."""
        pending = self.pending
        if len(pending) >= self.max_pending:
            self.dropped += 1
            return
        hget = ex.hdict.get
        pending.append(
            (
                reporter, ex.trace, ex.trace_root, ex.route, ex.start, ms, ex.method, ex.url,
                ex.authority or hget("host") or "", ex.status, ex.flags,
                ex.request_id or hget("x-request-id"), hget("user-agent"),
                hget("x-envoy-downstream-service-cluster"), ex.conn.peer, ex.bytes_in,
                ex.bytes_out, ex.cluster_name, ex.upstream_host,
            )
        )  # fmt: skip

    # --- off the request path -----------------------------------------------------------

    def drain(self) -> int:
        """Turn the finished requests into spans and queue them for the collector."""
        pending = self.pending
        if not pending:
            return 0
        self.pending = []
        sender = self.sender
        if sender is None:
            return 0
        proxy = self.proxy
        offset = self._offset
        for record in pending:
            span = self.span(record, proxy, offset)
            sender.submit(span)
        return len(pending)

    def name(self, host: str, port: int) -> str:
        key = (host, port)
        name = self._names.get(key)
        if name is None:
            if len(self._names) > 1024:
                self._names.clear()
            name = self._names[key] = zipkin.operation_name(host, port)
        return name

    def span(self, record: tuple[Any, ...], proxy: zipkin.ProxyInfo, offset: float) -> zipkin.Span:
        (reporter, ctx, root, route, start, ms, method, url, authority, status, flags,
         request_id, user_agent, downstream, peer, bytes_in, bytes_out, cluster,
         upstream) = record  # fmt: skip
        target = url.decode("latin-1") if isinstance(url, bytes) else str(url)
        path = target
        if target[:1] != "/":
            # The absolute form an app sends its proxy: the path is after the authority.
            rest = target.split("://", 1)[-1]
            cut = rest.find("/")
            path = rest[cut:] if cut >= 0 else "/"
        ex = zipkin.Exchange(
            start_us=int((start + offset) * 1_000_000),
            duration_us=int(ms * 1000),
            method=method,
            url=zipkin.http_url("http", authority, path),
            status=status,
            flags=flags,
            request_id=request_id,
            user_agent=user_agent,
            downstream_cluster=downstream,
            peer_address=peer or None,
            request_size=bytes_in,
            response_size=bytes_out,
            upstream_cluster=cluster or None,
            upstream_address=upstream or None,
            route_name=route.route_name if route is not None else None,
        )
        if reporter == "destination":
            return zipkin.server_span(ctx, proxy, ex, self.inbound_name, shared=not root)
        if route is not None:
            name = self.name(route.cluster.host, route.cluster.port)
        else:
            name = self.name(authority.rsplit(":", 1)[0] or "unknown", 80)
        return zipkin.client_span(ctx, proxy, ex, name)


def make_tracer(
    app: str,
    service: str,
    namespace: str,
    pod: str,
    version: str | None,
    address: str,
    inbound_port: int | None,
    gateway: bool,
    sender: SpanSender | None,
    rng: random.Random,
) -> Tracer:
    """A proxy's tracer: Istio's tracing service name ``<app>.<namespace>``, the inbound span
    named by Istio's decorator for the pod's own service, sampling from the environment."""
    proxy = zipkin.ProxyInfo.of(
        app, namespace, pod, version=version, ipv4=address if _is_ipv4(address) else None,
        port=inbound_port, gateway=gateway,
    )  # fmt: skip
    inbound = zipkin.operation_name(f"{service}.{namespace}.svc.cluster.local", inbound_port or 0)
    return Tracer(proxy, sender, rng, sampling=sampling_from_env(), inbound_name=inbound)


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return False
    return True
