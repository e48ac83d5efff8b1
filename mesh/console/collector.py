"""Zipkin's v2 HTTP API on the console's ``TraceStore`` (openzipkin/zipkin-api zipkin2-api.yaml).

- ``POST /api/v2/spans``: a JSON array of spans → 202; not JSON, not an array or a bad span →
  400 with the reason as text (nothing of that request is kept); a body over the limit → 413.
- ``GET /api/v2/services`` → service names; ``GET /api/v2/spans?serviceName=`` → its span
  names (strings, as Zipkin's server answers; 400 without ``serviceName``);
  ``GET /api/v2/remoteServices?serviceName=``.
- ``GET /api/v2/traces?serviceName=&spanName=&minDuration=&maxDuration=&endTs=&lookback=&limit=``
  → a list of traces (each a list of spans); ``endTs`` defaults to now, ``lookback`` to one day
  (Zipkin's ``QUERY_LOOKBACK``), ``limit`` to 10.
- ``GET /api/v2/trace/{traceId}`` → the trace's spans, 404 when unknown, 400 when the id is
  not 16 or 32 hex characters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aiohttp import web

from mesh.telemetry.b3 import is_id
from mesh.telemetry.traces import Query, TraceStore
from mesh.telemetry.zipkin import SpanError, parse_spans

DEFAULT_LOOKBACK_MS = 86_400_000
MAX_LIMIT = 1000


def _spans_json(spans: list) -> list:  # type: ignore[type-arg]
    return [s.to_json() for s in spans]


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: expected an integer, got {raw!r}\n") from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"{name}: must not be negative\n")
    return value


def add_routes(
    app: web.Application, store: TraceStore, clock: Callable[[], float] = time.time
) -> None:
    async def post_spans(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}\n") from None
        try:
            spans = parse_spans(data)
        except SpanError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        store.add(spans)
        return web.Response(status=202)

    async def services(request: web.Request) -> web.Response:
        return web.json_response(store.services())

    def _service(request: web.Request) -> str:
        name = request.query.get("serviceName", "").strip()
        if not name:
            raise web.HTTPBadRequest(text="serviceName is required\n")
        return name

    async def span_names(request: web.Request) -> web.Response:
        return web.json_response(store.span_names(_service(request)))

    async def remote_services(request: web.Request) -> web.Response:
        return web.json_response(store.remote_services(_service(request).lower()))

    async def traces(request: web.Request) -> web.Response:
        now_ms = int(clock() * 1000)
        end_ts = _int_param(request, "endTs", now_ms)
        lookback = _int_param(request, "lookback", DEFAULT_LOOKBACK_MS)
        limit = _int_param(request, "limit", 10)
        query = Query(
            end_ts_ms=end_ts or now_ms,
            lookback_ms=lookback if lookback is not None else DEFAULT_LOOKBACK_MS,
            service_name=request.query.get("serviceName") or None,
            span_name=request.query.get("spanName") or None,
            min_duration_us=_int_param(request, "minDuration", None),
            max_duration_us=_int_param(request, "maxDuration", None),
            limit=min(limit if limit is not None else 10, MAX_LIMIT),
        )
        return web.json_response([_spans_json(t) for t in store.query(query)])

    async def trace(request: web.Request) -> web.Response:
        trace_id = request.match_info["trace_id"].lower()
        if not is_id(trace_id, (16, 32)):
            raise web.HTTPBadRequest(
                text=f"traceId {trace_id!r}: expected 16 or 32 hex characters\n"
            )
        spans = store.trace(trace_id)
        if spans is None:
            raise web.HTTPNotFound(text=f"trace {trace_id} not found\n")
        return web.json_response(_spans_json(spans))

    app.router.add_post("/api/v2/spans", post_spans)
    app.router.add_get("/api/v2/services", services)
    app.router.add_get("/api/v2/spans", span_names)
    app.router.add_get("/api/v2/remoteServices", remote_services)
    app.router.add_get("/api/v2/traces", traces)
    app.router.add_get("/api/v2/trace/{trace_id}", trace)
