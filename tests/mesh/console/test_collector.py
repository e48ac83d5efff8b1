"""Zipkin's v2 API on the console: good spans, malformed ones (400 with the reason), a flood."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from mesh.console.app import CONSOLE_KEY, Settings, create_app

NOW = 1_700_000_000.0


def span(
    trace: int, sid: int, service: str = "productpage.default", parent: int | None = None, **kw: Any
) -> dict[str, Any]:
    out = {
        "traceId": f"{trace:016x}", "id": f"{sid:016x}", "name": "reviews:9080/*", "kind": "CLIENT",
        "timestamp": int((NOW - 10) * 1e6) + sid, "duration": 1500,
        "localEndpoint": {"serviceName": service, "ipv4": "127.0.0.1"}, "tags": {"http.status_code": "200"},
    }  # fmt: skip
    if parent:
        out["parentId"] = f"{parent:016x}"
    return {**out, **kw}


def run(
    test: Callable[[TestClient[Any, Any]], Awaitable[None]], tmp_path: Path, **settings: Any
) -> None:
    async def main() -> None:
        app = create_app(
            Settings(mesh_dir=tmp_path, prometheus_url="http://127.0.0.1:9", **settings),
            clock=lambda: NOW,
        )
        async with TestClient(TestServer(app)) as client:
            await test(client)

    asyncio.run(main())


def test_spans_in_traces_out(tmp_path):
    async def test(client):  # type: ignore[no-untyped-def]
        spans = [
            span(1, 1, "istio-ingressgateway.istio-system"),
            span(1, 2, parent=1),
            span(2, 3, "details.default", duration=3_000_000),
        ]
        response = await client.post("/api/v2/spans", json=spans)
        assert response.status == 202
        assert await (await client.get("/api/v2/services")).json() == [
            "details.default", "istio-ingressgateway.istio-system", "productpage.default"
        ]  # fmt: skip
        assert await (await client.get("/api/v2/spans?serviceName=details.default")).json() == [
            "reviews:9080/*"
        ]
        assert (await client.get("/api/v2/spans")).status == 400
        traces = await (await client.get("/api/v2/traces?limit=10")).json()
        assert [t[0]["traceId"] for t in traces] == [f"{2:016x}", f"{1:016x}"]  # newest first
        slow = await (await client.get("/api/v2/traces?minDuration=2000000")).json()
        assert [t[0]["traceId"] for t in slow] == [f"{2:016x}"]
        by_service = await (
            await client.get(
                "/api/v2/traces?serviceName=productpage.default&spanName=reviews:9080/*"
            )
        ).json()
        assert len(by_service) == 1 and len(by_service[0]) == 2
        old = await (
            await client.get(f"/api/v2/traces?endTs={int((NOW - 3600) * 1000)}&lookback=1000")
        ).json()
        assert old == []
        trace = await (await client.get(f"/api/v2/trace/{1:016x}")).json()
        assert [s["id"] for s in trace] == [f"{1:016x}", f"{2:016x}"] and trace[1][
            "parentId"
        ] == f"{1:016x}"
        assert (await client.get(f"/api/v2/trace/{9:016x}")).status == 404
        assert (await client.get("/api/v2/trace/nothex")).status == 400
        assert (await client.get("/api/v2/traces?limit=many")).status == 400
        # The page's trace fragments read the same store.
        fragment = await (await client.get(f"/fragment/trace/{1:016x}")).text()
        assert fragment.count('class="span-row') == 2

    run(test, tmp_path)


def test_malformed_spans_get_400_with_the_reason_and_nothing_is_kept(tmp_path):
    async def test(client):  # type: ignore[no-untyped-def]
        cases = [
            (b"{not json", "the body is not JSON"),
            (json.dumps({"traceId": "1"}).encode(), "expected a JSON array"),
            (json.dumps([span(1, 1), span(2, 2, traceId="xyz")]).encode(), "spans[1].traceId"),
            (json.dumps([span(1, 1, kind="SRV")]).encode(), "spans[0].kind"),
        ]
        for body, reason in cases:
            response = await client.post(
                "/api/v2/spans", data=body, headers={"Content-Type": "application/json"}
            )
            assert response.status == 400, body
            assert reason in await response.text()
        assert await (await client.get("/api/v2/services")).json() == []
        huge = json.dumps([span(1, 1, tags={"x": "y" * 5000})] * 300).encode()
        assert (await client.post("/api/v2/spans", data=huge)).status == 413

    run(test, tmp_path, max_body_bytes=1_000_000)


def test_a_flood_of_spans_keeps_memory_bounded(tmp_path):
    async def test(client):  # type: ignore[no-untyped-def]
        for batch in range(40):
            spans = [span(batch * 100 + i + 1, 1) for i in range(100)]
            assert (await client.post("/api/v2/spans", json=spans)).status == 202
        store = client.server.app[CONSOLE_KEY].store
        assert len(store) == 200 and store.evicted == 3800
        one_trace = [span(999_999, i + 1) for i in range(1000)]
        assert (await client.post("/api/v2/spans", json=one_trace)).status == 202
        assert len(store.trace(f"{999_999:016x}")) == 50 and store.dropped == 950
        status = await (await client.get("/api/status")).json()
        assert status["collector"]["traces"] == 200 and status["collector"]["spans_dropped"] == 950

    run(test, tmp_path, max_traces=200, max_spans_per_trace=50)
