"""Per-cluster runtime state of one sidecar, rebuilt (cheaply) for every new route table.

Primitives:

- ``Load``: requests in flight and waiting for a cluster, plus retries in flight. It is keyed
  by cluster name and survives table swaps, so that requests started on an old table release
  the same counters new ones take (connectionPool limits are per client proxy per cluster).
- ``ClusterState``: one cluster of the current table with its limits read out of the
  DestinationRule's ``connectionPool``, a load balancer, an outlier detector (kept across
  swaps while the cluster's ``outlierDetection`` is unchanged, so an ejection survives a
  reload of some unrelated resource), and the cached tuple of endpoints not ejected now.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from mesh.resilience.outlier import OutlierDetector
from mesh.routing.balance import make_balancer
from mesh.sidecar.http1.client import DEFAULT_IDLE_TIMEOUT

# Istio's default tcp.connectTimeout.
DEFAULT_CONNECT_TIMEOUT = 10.0


class Load:
    """In-flight accounting of one cluster (per sidecar)."""

    __slots__ = ("inflight", "waiters", "retries", "overflows")

    def __init__(self) -> None:
        self.inflight = 0
        self.waiters: deque[asyncio.Future[bool]] = deque()
        self.retries = 0
        self.overflows = 0

    def release(self) -> None:
        """Give the slot back, or hand it straight to the oldest waiter (so that a newcomer
        cannot slip in between and push the cluster over its limit)."""
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return
        self.inflight -= 1


class ClusterState:
    """One cluster of the applied table, with what the data plane needs at request time."""

    # Carried over from the previous table's state when the outlier policy is unchanged.
    outlier: OutlierDetector
    next_sweep: float
    ejections: int

    __slots__ = (
        "cluster",
        "name",
        "balancer",
        "outlier",
        "outlier_policy",
        "healthy",
        "load",
        "max_conns",
        "max_pending",
        "max_active",
        "max_per_conn",
        "max_retries",
        "idle_timeout",
        "max_duration",
        "connect_timeout",
        "labels",
        "unknown_labels",
        "next_sweep",
        "ejections",
        "makes_cookie",
        "notify",
    )

    def __init__(
        self,
        cluster: Any,
        load: Load,
        previous: ClusterState | None,
        now: float,
        prefix: Callable[[str, Any], tuple[str, ...]] | None = None,
    ):
        self.cluster = cluster
        self.name: str = cluster.name
        policy = cluster.policy
        self.balancer = make_balancer(policy)
        # consistentHash on a cookie with a ttl: a request without the cookie gets one.
        cookie = getattr(getattr(self.balancer, "config", None), "http_cookie", None)
        self.makes_cookie = cookie is not None and cookie.ttl is not None
        outlier_policy = getattr(policy, "outlier_detection", None)
        self.outlier_policy = outlier_policy
        keys = [e.key for e in cluster.endpoints]
        if previous is not None and previous.outlier_policy == outlier_policy:
            self.outlier = previous.outlier
            self.next_sweep = previous.next_sweep
            self.ejections = previous.ejections
        else:
            self.outlier = OutlierDetector(outlier_policy)
            self.next_sweep = now + _interval(self.outlier)
            self.ejections = 0
        self.outlier.set_hosts(keys)
        self.load = load
        pool = getattr(policy, "connection_pool", None)
        tcp = getattr(pool, "tcp", None)
        http = getattr(pool, "http", None)
        self.max_conns: int | None = getattr(tcp, "max_connections", None)
        self.connect_timeout: float = (
            getattr(tcp, "connect_timeout", None) or DEFAULT_CONNECT_TIMEOUT
        )
        self.max_pending: int | None = getattr(http, "http1_max_pending_requests", None)
        self.max_active: int | None = getattr(http, "http2_max_requests", None)
        # 0 means unlimited, as in Istio.
        self.max_per_conn: int = getattr(http, "max_requests_per_connection", None) or 0
        self.max_retries: int | None = getattr(http, "max_retries", None)
        # Pooled connections: closed after this long without a request (http.idleTimeout,
        # else tcp.idleTimeout; the smaller when both are set; Istio's default 1 h), and,
        # once idle, after tcp.maxConnectionDuration of life.
        idles = [
            t for t in (getattr(http, "idle_timeout", None), getattr(tcp, "idle_timeout", None))
            if t is not None and t > 0
        ]  # fmt: skip
        self.idle_timeout: float = min(idles) if idles else DEFAULT_IDLE_TIMEOUT
        max_duration = getattr(tcp, "max_connection_duration", None)
        self.max_duration: float | None = max_duration if max_duration else None
        # Istio's label prefix per endpoint (``Telemetry.source_prefix``), made here, once per
        # table, so a request only looks it up; ``unknown_labels`` when no endpoint answered.
        prefix = prefix or _no_telemetry
        self.labels: dict[str, tuple[str, ...]] = {
            e.key: prefix(cluster.host, e) for e in cluster.endpoints
        }
        self.unknown_labels = prefix(cluster.host, None)
        self.healthy: tuple[Any, ...] = ()
        # Called when an endpoint is ejected or returns (the proxy republishes its status).
        self.notify: Callable[[], None] | None = None
        self.refresh(now)

    def refresh(self, now: float) -> None:
        """Recompute the endpoints not ejected (after an ejection or a sweep)."""
        outlier = self.outlier
        self.healthy = tuple(
            e for e in self.cluster.endpoints if not outlier.is_ejected(e.key, now)
        )

    def record(self, key: str, status: int | None, now: float) -> None:
        """An attempt's outcome for outlier detection (None = local-origin failure)."""
        if self.outlier.record(key, status, now):
            self.ejections += 1
            self.refresh(now)
            if self.notify is not None:
                self.notify()

    def maybe_sweep(self, now: float) -> None:
        if now >= self.next_sweep:
            returned = self.outlier.sweep(now)
            self.next_sweep = now + _interval(self.outlier)
            self.refresh(now)
            if returned and self.notify is not None:
                self.notify()

    def ejected(self, now: float, wall: float) -> list[dict[str, Any]]:
        """The endpoints ejected now, for the proxy's status record: ``until`` in Unix time
        (``wall`` is the Unix time at monotonic ``now``)."""
        if len(self.healthy) == len(self.cluster.endpoints):
            return []
        out = []
        hosts = self.outlier.hosts
        for e in self.cluster.endpoints:
            host = hosts.get(e.key)
            if host is not None and host.ejected_until is not None:
                out.append(
                    {
                        "pod": e.pod,
                        "address": e.key,
                        "cluster": self.name,
                        "until": round(wall + host.ejected_until - now, 3),
                    }
                )
        return out

    def describe(self, now: float) -> dict[str, Any]:
        """For the admin ``/clusters`` page."""
        healthy = {e.key for e in self.healthy}
        return {
            "name": self.name,
            "host": self.cluster.host,
            "subset": self.cluster.subset,
            "port": self.cluster.port,
            "defined": self.cluster.defined,
            "inflight": self.load.inflight,
            "pending": len(self.load.waiters),
            "overflows": self.load.overflows,
            "ejections_total": self.ejections,
            "endpoints": [
                {
                    "pod": e.pod,
                    "address": e.key,
                    "labels": dict(e.labels),
                    "health": "healthy" if e.key in healthy else "ejected",
                    "ejected": e.key not in healthy,
                    "outlier": _describe(self.outlier, e.key, now),
                }
                for e in self.cluster.endpoints
            ],
        }


def _interval(outlier: Any) -> float:
    interval = getattr(outlier, "interval", None)
    return float(interval) if interval else 1.0


def _describe(outlier: Any, key: str, now: float) -> Any:
    try:
        return outlier.describe(key, now)
    except Exception as exc:  # admin output must not fail on a detector quirk
        return {"error": str(exc)}


def _no_telemetry(host: str, endpoint: Any) -> tuple[str, ...]:
    """Label prefixes of a state built without a proxy's telemetry (tests, tools)."""
    from mesh.telemetry.istio import SOURCE, UNKNOWN_PEER, label_prefix, service_of_host

    return label_prefix(SOURCE, UNKNOWN_PEER, UNKNOWN_PEER, service_of_host(host))
