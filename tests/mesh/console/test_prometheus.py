"""The console's Prometheus client against a real HTTP server speaking Prometheus's API: the
answers it reads, and every bad answer turned into a message a trainee can act on."""

from __future__ import annotations

import asyncio
import math
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mesh.console.prometheus import (
    Prometheus,
    PrometheusError,
    p95_query,
    requests_query,
    security_query,
    traffic_query,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def against(handler: Handler, test: Callable[[Prometheus], Awaitable[Any]]) -> Any:
    """Run ``test`` with a client of a server whose every ``/api/v1/*`` request ``handler``
    answers."""

    async def main() -> Any:
        app = web.Application()
        app.router.add_get("/api/v1/{endpoint}", handler)
        async with TestServer(app, host="127.0.0.1") as server:
            client = Prometheus(str(server.make_url("/")), timeout=2.0)
            try:
                return await test(client)
            finally:
                await client.close()

    return asyncio.run(main())


def answer(data: Any, status: int = 200, seen: list[dict[str, str]] | None = None) -> Handler:
    """A handler answering ``data`` as JSON; each request's endpoint and query go to ``seen``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if seen is not None:
            seen.append({"endpoint": request.match_info["endpoint"], **request.query})
        return web.json_response(data, status=status)

    return handler


def test_an_instant_vector_is_labels_and_numbers():
    seen: list[dict[str, str]] = []
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"destination_version": "v1"}, "value": [1700000000.1, "3.5"]},
                {"metric": {"destination_version": "v2"}, "value": [1700000000.1, "NaN"]},
            ],
        },
    }
    samples = against(answer(body, seen=seen), lambda p: p.query("up"))
    assert samples[0] == ({"destination_version": "v1"}, 3.5)
    assert samples[1][0] == {"destination_version": "v2"} and math.isnan(samples[1][1])
    assert seen == [{"endpoint": "query", "query": "up"}]


def test_a_range_is_series_of_points():
    seen: list[dict[str, str]] = []
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"app": "reviews"}, "values": [[10, "1"], [11, "2.5"]]}],
        },
    }
    series = against(answer(body, seen=seen), lambda p: p.query_range("up", 10.0, 11.0, 1.0))
    assert series == [({"app": "reviews"}, [(10.0, 1.0), (11.0, 2.5)])]
    assert seen == [
        {"endpoint": "query_range", "query": "up", "start": "10.000", "end": "11.000", "step": "1"}
    ]


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (
            answer({"status": "error", "errorType": "bad_data", "error": "parse error"}, 400),
            "Prometheus refused the query (400): parse error",
        ),
        (answer({"status": "success", "data": {"resultType": "matrix"}}), "expected a vector"),
        (answer(["not", "an", "object"]), "answered 200 without JSON"),
    ],
)
def test_a_refusal_or_a_wrong_answer_is_a_prometheus_error(handler: Handler, message: str):
    with pytest.raises(PrometheusError, match=re.escape(message)):
        against(handler, lambda p: p.query("up"))


def test_a_proxy_error_page_is_a_prometheus_error():
    async def bad_gateway(request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")

    with pytest.raises(PrometheusError, match="answered 502 without JSON"):
        against(bad_gateway, lambda p: p.query("up"))


def test_nobody_listening_is_not_reachable():
    with socket.socket() as probe:  # a port that was free a moment ago: refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        client = Prometheus(f"http://127.0.0.1:{port}", timeout=2.0)
        try:
            await client.query("up")
        finally:
            await client.close()

    with pytest.raises(PrometheusError, match=f"Prometheus at http://127.0.0.1:{port} is not"):
        asyncio.run(main())


def test_the_queries_read_istios_metrics_as_the_reporting_proxy_saw_them():
    # Exact counts over the window (no extrapolation): now less 30 s ago, per series; a
    # series born or reset in the window from zero.
    assert (
        '((istio_requests_total{reporter="source"} - istio_requests_total{reporter="source"} '
        'offset 30s) >= 0 or istio_requests_total{reporter="source"})'
    ) in requests_query(30)
    # A caller without a proxy: only the callee's proxy saw it (Kiali's "unknown" node).
    unknown = 'istio_requests_total{reporter="destination",source_workload="unknown"}'
    assert f" or (({unknown} - {unknown} offset 30s) >= 0 or {unknown}))" in requests_query(30)
    assert 'bucket{reporter="destination",source_workload="unknown"}[30s]' in p95_query(30)
    assert "histogram_quantile(0.95" in p95_query(30)
    assert "istio_request_duration_milliseconds_bucket" in p95_query(30)
    # mTLS on an edge is what the server side saw (connection_security_policy).
    assert 'reporter="destination"' in security_query(30)
    assert "connection_security_policy" in security_query(30)
    assert traffic_query(3).endswith('(rate(istio_requests_total{reporter="source"}[3s]))')
