"""What every request reads: ``Runtime`` holds the applied route table and its per-cluster
state, the upstream pool, telemetry and the proxy's random source; ``install`` swaps tables
atomically. ``AppEndpoint`` is the pod's own app, the inbound listener's only upstream."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from mesh.sidecar.clusters import ClusterState, Load
from mesh.sidecar.http1.client import Pool
from mesh.sidecar.telemetry import Telemetry
from mesh.sidecar.tracing import Tracer


class AppEndpoint(NamedTuple):
    key: str
    address: str
    port: int


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
        # The pod's app, for the inbound listener's tries (no routing, no balancer).
        self.app = AppEndpoint(self.app_key, app_address, app_port or 0)
        self.mirrors_in_flight = 0
        # The metadata-exchange header lines this proxy adds to every request it sends
        # (``x-envoy-peer-metadata``/``-id``), made once by the proxy.
        self.peer_lines: list[bytes] = []
        # Called when outlier detection ejects or returns an endpoint.
        self.ejection_hook: Callable[[], None] | None = None
        # b3 in, spans out (None: telemetry off).
        self.tracer: Tracer | None = None
        # ``mesh.sidecar.secure.Security`` when mTLS or policies apply to this proxy; None:
        # plaintext with no policy, and no per-request security work at all.
        self.security: Any = None
        # No sidecar in the pod (``--no-sidecar``): the proxy plays kube-proxy, which
        # forwards connections and answers nothing itself.
        self.kube_proxy = False

    def install(self, table: Any) -> None:
        """Build the cluster states of ``table`` and make it current, in one assignment."""
        now = time.monotonic()
        states: dict[str, ClusterState] = {}
        for name, cluster in table.clusters.items():
            load = self.loads.get(name)
            if load is None:
                load = self.loads[name] = Load()
            state = states[name] = ClusterState(
                cluster, load, self.states.get(name), now, self.telemetry.source_prefix
            )
            state.notify = self.on_ejection
        # Requests read (table, states) together without awaiting in between, and nothing
        # awaits between these two assignments: no request sees one without the other.
        self.states = states
        self.table = table

    def on_ejection(self) -> None:
        """An endpoint was ejected or returned: tell ``ejection_hook`` (the proxy's status)."""
        hook = self.ejection_hook
        if hook is not None:
            hook()

    def ejected(self, now: float, wall: float) -> list[dict[str, Any]]:
        """Every endpoint ejected now, over all clusters."""
        return [e for state in self.states.values() for e in state.ejected(now, wall)]

    def sweep(self, now: float) -> None:
        for state in self.states.values():
            state.maybe_sweep(now)
