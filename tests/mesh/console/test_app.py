"""The console's page and API with a Prometheus that is slow or down: it says so, it serves."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from mesh.console.app import Settings, create_app


def run(test: Any, tmp_path: Path, prometheus_url: str, timeout: float = 1.0) -> None:
    async def main() -> None:
        settings = Settings(
            mesh_dir=tmp_path, prometheus_url=prometheus_url, prometheus_timeout=timeout
        )
        async with TestClient(TestServer(create_app(settings))) as client:
            await test(client)

    asyncio.run(main())


def test_a_silent_prometheus_times_out_and_the_console_says_so(tmp_path):
    silent = socket.socket()  # accepts connections (the kernel's backlog), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"

    async def test(client):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        graph = await (await client.get("/api/graph?duration=30s")).json()
        assert time.monotonic() - started < 3.0
        assert graph["prometheus"] == {
            "url": url,
            "ok": False,
            "error": f"Prometheus at {url} did not answer within 1 s",
        }
        fragment = await (await client.get("/fragment/graph")).text()
        assert "did not answer within 1 s" in fragment and "showing the config only" in fragment
        traffic = await (await client.get("/api/traffic?minutes=1")).json()
        assert "did not answer" in traffic["error"]
        assert (await client.get("/healthz")).status == 200

    try:
        run(test, tmp_path, url)
    finally:
        silent.close()


def test_page_static_and_bad_parameters(tmp_path):
    async def test(client):  # type: ignore[no-untyped-def]
        page = await (await client.get("/")).text()
        assert '<script src="/static/console.js">' in page and 'id="graph"' in page
        js = await client.get("/static/console.js")
        assert js.status == 200 and js.content_type == "application/javascript"
        assert (await client.get("/static/../app.py")).status == 404
        bad = await client.get("/api/graph?duration=forever")
        assert bad.status == 400 and "expected a number and s, m or h" in await bad.text()
        assert (await client.get("/api/traffic?minutes=0")).status == 400
        empty = await (await client.get("/fragment/graph")).text()
        assert "is not reachable" in empty and "No pods registered yet" in empty
        assert await (await client.get("/api/timeline")).json() == []

    run(test, tmp_path, "http://127.0.0.1:9")
