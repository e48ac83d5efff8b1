"""What every request reads: ``Runtime`` holds the applied route table and its per-cluster
state, the upstream pool, telemetry and the proxy's random source; ``install`` swaps tables
atomically. ``AppEndpoint`` is the pod's own app, the inbound listener's only upstream."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, NamedTuple

from mesh.sidecar.clusters import ClusterState, Load
from mesh.sidecar.http1.client import Pool
from mesh.sidecar.telemetry import Telemetry


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
        pod_labels: tuple[str, str, str] = ("unknown", "unknown", "unknown"),
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
        self.pod_labels = pod_labels
        self.mirrors_in_flight = 0
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
            states[name] = ClusterState(cluster, load, self.states.get(name), now)
        # Requests read (table, states) together without awaiting in between, and nothing
        # awaits between these two assignments: no request sees one without the other.
        self.states = states
        self.table = table

    def sweep(self, now: float) -> None:
        for state in self.states.values():
            state.maybe_sweep(now)
