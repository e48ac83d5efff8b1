"""The console's only way to metrics: Prometheus's HTTP API (``/api/v1/query``, ``query_range``).

Primitives: ``Prometheus(base_url, timeout)`` with ``query(promql)`` → ``[(labels, value)]``
and ``query_range(promql, start, end, step)`` → ``[(labels, [(t, value)])]``. Anything that
is not a successful answer within ``timeout`` (refused, slow, a 4xx/5xx, an ``"error"``
status, garbage) raises ``PrometheusError`` whose message a trainee can act on.

The PromQL the console runs is here too, so the README's examples and the console agree.
"""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp

EDGE_LABELS = (
    "source_workload, source_app, source_version, source_workload_namespace, "
    "destination_workload, destination_app, destination_version, "
    "destination_service_name, destination_service_namespace"
)


def counted(series: str, window: int) -> str:
    """What ``series`` (a counter) counted over the last ``window`` seconds, exactly: its
    value now less its value ``window`` seconds ago, per series; a series born in the window
    (no value then) or reset in it (a restarted proxy) counts from zero. Unlike
    ``increase()``, nothing is extrapolated to the window's edges, so a window that holds a
    run of requests shows that run's counts (``make verify-canary-70-30``'s, one for one)."""
    return f"(({series} - {series} offset {window}s) >= 0 or {series})"


# Who reports an edge: the caller's proxy; for a caller without one (a pod without sidecar,
# a client outside the mesh) only the callee's proxy saw the request, with an unknown source
# (Kiali draws those from the destination's telemetry too, as its "unknown" node).
BY_SOURCE = '{reporter="source"}'
UNKNOWN_CALLER = '{reporter="destination",source_workload="unknown"}'


def requests_query(window: int) -> str:
    return (
        f"sum by ({EDGE_LABELS}, response_code, response_flags) ("
        + counted(f"istio_requests_total{BY_SOURCE}", window)
        + " or "
        + counted(f"istio_requests_total{UNKNOWN_CALLER}", window)
        + ")"
    )


def p95_query(window: int) -> str:
    bucket = "istio_request_duration_milliseconds_bucket"
    return (
        f"histogram_quantile(0.95, sum by (le, {EDGE_LABELS}) "
        f"(rate({bucket}{BY_SOURCE}[{window}s]) or rate({bucket}{UNKNOWN_CALLER}[{window}s])))"
    )


def security_query(window: int) -> str:
    return (
        f"sum by ({EDGE_LABELS}, connection_security_policy, source_principal, "
        "destination_principal) " + counted('istio_requests_total{reporter="destination"}', window)
    )


def traffic_query(rate_window: int = 3) -> str:
    """Requests/s per app version, as the callers' proxies count them (a short window, so a
    blue/green switch is a step)."""
    return (
        "sum by (destination_service_name, destination_app, destination_version) "
        f'(rate(istio_requests_total{{reporter="source"}}[{rate_window}s]))'
    )


class PrometheusError(RuntimeError):
    """Prometheus did not answer usefully; the message says what happened."""


Sample = tuple[dict[str, str], float]


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


class Prometheus:
    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False
            )
        url = f"{self.base_url}{path}"
        try:
            async with self._session.get(url, params=params) as response:
                text = await response.text()
                status = response.status
        except TimeoutError:
            raise PrometheusError(
                f"Prometheus at {self.base_url} did not answer within {self.timeout:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise PrometheusError(
                f"Prometheus at {self.base_url} is not reachable: {exc}"
            ) from None
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(f"Prometheus at {self.base_url} answered {status} without JSON")
        if body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus refused the query ({status}): {body.get('error', 'no reason given')}"
            )
        return body.get("data", {})

    async def query(self, promql: str) -> list[Sample]:
        data = await self._get("/api/v1/query", {"query": promql})
        if data.get("resultType") != "vector":
            raise PrometheusError(f"expected a vector, got {data.get('resultType')!r}")
        return [
            (dict(item.get("metric", {})), _number(item.get("value", [0, "NaN"])[1]))
            for item in data.get("result", [])
        ]

    async def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        data = await self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise PrometheusError(f"expected a matrix, got {data.get('resultType')!r}")
        return [
            (
                dict(item.get("metric", {})),
                [(float(t), _number(v)) for t, v in item.get("values", [])],
            )
            for item in data.get("result", [])
        ]
