"""The live config as Locust's Versions view needs it, read from the mesh directory.

Where it comes from: ``$MESH_DIR`` (compose: ``/mesh`` in the locust container; local: the
lab's ``.mesh``, which ``make locust`` passes on), the files the lab already keeps for
``meshctl proxy-status``: the gateway's status record (``status/<gateway pod>.json``, role
``gateway``: the config version the gateway *applied*, so a mark on the charts is the moment traffic
through the gateway changed) and, when that version changes, the published snapshot's
VirtualServices (does one bound to a gateway name the blue/green test host?).

Primitives: ``LiveConfig`` (``version`` and ``test_host_routed``, each ``None`` while
unknown), ``read_live_config(mesh_dir, host, last)`` (reads the snapshot only when the
version moved), ``names_host(resources, host)`` (pure).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.manager.observe import MeshState
from mesh.meshdir import MeshDir


@dataclass(frozen=True)
class LiveConfig:
    version: int | None = None
    test_host_routed: bool | None = None


UNKNOWN = LiveConfig()


def names_host(resources: Iterable[Mapping[str, Any]], host: str) -> bool:
    """Does a VirtualService bound to a gateway name ``host`` itself (not only through ``*``)?

    Under the baseline or a canary the gateway's VirtualService says ``hosts: ["*"]``: the
    test host is served like any other, and its row would only repeat the live one."""
    for resource in resources:
        if resource.get("kind") != "VirtualService":
            continue
        spec = resource.get("spec") or {}
        if spec.get("gateways") and host in (spec.get("hosts") or ()):
            return True
    return False


def read_live_config(mesh_dir: str | Path, host: str, last: LiveConfig = UNKNOWN) -> LiveConfig:
    """The gateway's applied version, and whether the config names ``host``; ``last`` spares
    reading the snapshot while the version is unchanged. Unreadable: ``UNKNOWN``."""
    mesh = MeshDir(Path(mesh_dir))
    if not mesh.status.is_dir():
        return UNKNOWN
    state = MeshState.read(mesh, with_snapshot=False)
    # The ingress gateway's record (role "gateway"; the lab runs one).
    gateways = [st for _, st in sorted(state.statuses.items()) if st.role == "gateway"]
    version = gateways[0].version if gateways else None
    if version is None:
        return UNKNOWN
    if version == last.version:
        return last
    state = MeshState.read(mesh)
    snapshot = state.snapshot
    if snapshot is None or snapshot.version != version:
        # The gateway applied a version the snapshot file no longer holds (a newer one is
        # published already): the gateway follows within a second; read again then.
        return last
    return LiveConfig(version, names_host(snapshot.resources, host))
