"""The console's web app: the page, its fragments, the JSON API and the Zipkin collector.

Primitives: ``Settings``; ``Console`` (reads the mesh directory — snapshot, registry, the
manager's ``observe/history.json``, the sidecars' ``status/<pod>.json`` ``ejected`` field —
and Prometheus; builds the graph, timeline and traffic views; holds the ``TraceStore``);
``create_app(settings)`` (the aiohttp application).

Routes: ``GET /`` (the page), ``/static/console.js|css``, ``/api/graph?duration=30s``,
``/api/timeline``, ``/api/traffic?minutes=5``, ``/api/status``, ``/healthz``,
``/fragment/{graph,traffic,timeline,traces}``, ``/fragment/trace/{id}``, and Zipkin's v2 API
(``mesh.console.collector``). A Prometheus that is down or slow makes the graph say so (and
show the config without traffic); the console keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from mesh.config.normal_form import to_normal
from mesh.console import views
from mesh.console.collector import add_routes
from mesh.console.config_view import ConfigView, Proxy
from mesh.console.graph import Ejection, Pod, build_graph, parse_duration, parse_ejections
from mesh.console.prometheus import (
    Prometheus,
    PrometheusError,
    p95_query,
    requests_query,
    security_query,
    traffic_query,
)
from mesh.manager.observers import read_history, resource_digest
from mesh.manager.registry import is_fresh, read_registry
from mesh.meshdir import (
    NOT_A_PROXY,
    RECORD_SUFFIX,
    MeshDir,
    RegistryRecord,
    list_files,
    read_json,
    read_snapshot,
)
from mesh.snapshot import Snapshot, SnapshotError
from mesh.telemetry.traces import Query, TraceStore

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"console.js": "application/javascript", "console.css": "text/css"}
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
DEFAULT_PORT = 20001
GRAPH_CACHE_SECONDS = 1.0


@dataclass
class Settings:
    mesh_dir: Path
    prometheus_url: str = "http://127.0.0.1:9090"
    prometheus_timeout: float = 2.0
    max_traces: int = 1000
    max_spans_per_trace: int = 500
    max_trace_bytes: int = 64 * 1024 * 1024
    max_body_bytes: int = 8 * 1024 * 1024
    scenarios: Path | None = SCENARIOS


def scenario_index(directory: Path | None) -> dict[str, set[str]]:
    """Resource digest → names of the scenario files holding exactly that resource."""
    index: dict[str, set[str]] = {}
    if directory is None or not directory.is_dir():
        return index
    from mesh.manager.yaml_files import load_paths

    for path in sorted(directory.glob("*.yaml")):
        try:
            result = load_paths([path])
        except Exception:  # a broken scenario file must not break the console
            continue
        for resource in result.resources:
            # The snapshot holds each resource in normal form: digest the same form.
            plain = json.loads(json.dumps(to_normal(resource), sort_keys=True, default=str))
            index.setdefault(resource_digest(plain), set()).add(path.stem)
    return index


def scenario_of(entry: dict[str, Any], index: dict[str, set[str]]) -> str | None:
    """The scenario files that hold every resource an entry created or changed."""
    digests = list((entry.get("digests") or {}).values())
    if not digests:
        return None
    names: set[str] | None = None
    for digest in digests:
        found = index.get(digest, set())
        names = set(found) if names is None else names & found
    return " / ".join(sorted(names)[:2]) if names else None


class Console:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.mesh = MeshDir(settings.mesh_dir)
        self.store = TraceStore(
            settings.max_traces, settings.max_spans_per_trace, settings.max_trace_bytes
        )
        self.prometheus = Prometheus(settings.prometheus_url, settings.prometheus_timeout)
        self._view_key: tuple[Any, ...] | None = None
        self._view = ConfigView()
        self._graphs: dict[int, tuple[float, dict[str, Any], str | None]] = {}
        self._scenarios: dict[str, set[str]] | None = None

    # -- the mesh directory ----------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        try:
            return read_snapshot(self.mesh)
        except (OSError, SnapshotError):
            return None

    def records(self) -> list[RegistryRecord]:
        now = self.clock()
        records, _ = read_registry(self.mesh.registry)
        return [r for r in records if is_fresh(r, now)]

    def ejections(self) -> list[Ejection]:
        found: list[Ejection] = []
        for path in list_files(self.mesh.status, (RECORD_SUFFIX,)):
            if path.name in NOT_A_PROXY:
                continue
            status = read_json(path)
            if status:
                found.extend(parse_ejections(str(status.get("pod") or path.stem), status))
        return found

    async def config_view(
        self, snapshot: Snapshot | None, records: list[RegistryRecord]
    ) -> ConfigView:
        proxies = [Proxy(r.pod, dict(r.labels), r.role == "gateway") for r in records]
        key = (snapshot.hash if snapshot else None, tuple(sorted((p.pod, p.node) for p in proxies)))
        if key != self._view_key:
            self._view = await asyncio.to_thread(ConfigView.build, snapshot, proxies)
            self._view_key = key
        return self._view

    def timeline(self) -> list[dict[str, Any]]:
        entries = read_history(self.mesh.config_history)
        if self._scenarios is None:
            self._scenarios = scenario_index(self.settings.scenarios)
        for entry in entries:
            entry["scenario"] = scenario_of(entry, self._scenarios)
        return entries

    # -- views -------------------------------------------------------------------------------

    async def graph(self, window: int) -> tuple[dict[str, Any], str | None]:
        now = self.clock()
        cached = self._graphs.get(window)
        if cached is not None and now - cached[0] < GRAPH_CACHE_SECONDS:
            return cached[1], cached[2]
        snapshot = self.snapshot()
        records = self.records()
        view = await self.config_view(snapshot, records)
        pods = [
            Pod(
                r.pod,
                r.labels.get("app", r.service or r.pod),
                r.labels.get("version", "unknown"),
                r.labels.get("namespace", "default"),
                r.role == "gateway",
            )
            for r in records
        ]
        error = None
        requests: list[Any] = []
        p95: list[Any] = []
        security: list[Any] = []
        try:
            requests, p95, security = await asyncio.gather(
                self.prometheus.query(requests_query(window)),
                self.prometheus.query(p95_query(window)),
                self.prometheus.query(security_query(window)),
            )
        except PrometheusError as exc:
            error = str(exc)
        graph = build_graph(
            window=window,
            requests=requests,
            p95=p95,
            security=security,
            pods=pods,
            view=view,
            ejections=self.ejections(),
            now=now,
        )
        graph["prometheus"] = {"url": self.prometheus.base_url, "ok": error is None, "error": error}
        self._graphs[window] = (now, graph, error)
        return graph, error

    async def traffic(self, minutes: float) -> dict[str, Any]:
        end = self.clock()
        start = end - minutes * 60
        step = max(1.0, minutes * 60 / 300)
        try:
            series = await self.prometheus.query_range(traffic_query(), start, end, step)
            error = None
        except PrometheusError as exc:
            series, error = [], str(exc)
        return {"start": start, "end": end, "series": series, "error": error}

    def recent_traces(self, limit: int = 15) -> list[Any]:
        now_ms = int(self.clock() * 1000)
        return self.store.query(
            Query(end_ts_ms=now_ms + 60_000, lookback_ms=3_600_000, limit=limit)
        )


def _window(request: web.Request) -> int:
    try:
        return parse_duration(request.query.get("duration", "30s"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None


def _minutes(request: web.Request) -> float:
    raw = request.query.get("minutes", "5")
    try:
        minutes = float(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"minutes: expected a number, got {raw!r}\n") from None
    if not 0.5 <= minutes <= 60:
        raise web.HTTPBadRequest(text="minutes: must be between 0.5 and 60\n")
    return minutes


CONSOLE_KEY = web.AppKey("console", Console)


def create_app(settings: Settings, clock: Callable[[], float] = time.time) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    console = Console(settings, clock)
    app[CONSOLE_KEY] = console

    def html(text: str) -> web.Response:
        return web.Response(
            text=text, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def index(request: web.Request) -> web.Response:
        return html(views.page())

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC / name).read_bytes(), content_type=STATIC_FILES[name])

    async def api_graph(request: web.Request) -> web.Response:
        graph, _ = await console.graph(_window(request))
        return web.json_response(graph)

    async def api_timeline(request: web.Request) -> web.Response:
        return web.json_response(console.timeline())

    async def api_traffic(request: web.Request) -> web.Response:
        return web.json_response(await console.traffic(_minutes(request)))

    async def api_status(request: web.Request) -> web.Response:
        store = console.store
        return web.json_response(
            {
                "mesh_dir": str(console.mesh.root),
                "prometheus": console.prometheus.base_url,
                "collector": {
                    "traces": len(store),
                    "spans_accepted": store.accepted,
                    "spans_dropped": store.dropped,
                    "traces_evicted": store.evicted,
                    "max_traces": store.max_traces,
                },
            }
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def fragment_graph(request: web.Request) -> web.Response:
        graph, error = await console.graph(_window(request))
        return html(views.graph_svg(graph, error))

    async def fragment_traffic(request: web.Request) -> web.Response:
        data = await console.traffic(_minutes(request))
        return html(
            views.traffic_svg(
                data["series"], console.timeline(), data["start"], data["end"], data["error"]
            )
        )

    async def fragment_timeline(request: web.Request) -> web.Response:
        return html(views.timeline_html(console.timeline()))

    async def fragment_traces(request: web.Request) -> web.Response:
        return html(views.traces_html(console.recent_traces()))

    async def fragment_trace(request: web.Request) -> web.Response:
        trace_id = request.match_info["trace_id"]
        return html(views.waterfall_html(console.store.trace(trace_id), trace_id))

    async def close(app: web.Application) -> None:
        await console.prometheus.close()

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/graph", api_graph)
    app.router.add_get("/api/timeline", api_timeline)
    app.router.add_get("/api/traffic", api_traffic)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/fragment/graph", fragment_graph)
    app.router.add_get("/fragment/traffic", fragment_traffic)
    app.router.add_get("/fragment/timeline", fragment_timeline)
    app.router.add_get("/fragment/traces", fragment_traces)
    app.router.add_get("/fragment/trace/{trace_id}", fragment_trace)
    add_routes(app, console.store, clock)
    app.on_cleanup.append(close)
    return app
