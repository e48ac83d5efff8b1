"""Reading the live mesh for people: manager state, proxy status, endpoints (pure views + reads).

Primitives:

- ``ProxyRow``/``proxy_rows(records, statuses, published, now)``: per pod, the applied version
  and SYNCED / STALE / ERROR, Istio ``proxy-status`` style:
  ``SYNCED`` its status reports the published version (or hash); ``STALE`` behind, silent
  for too long, or its registry record expired; ``ERROR`` it reported an error about the
  version that is published now (it keeps serving its last good snapshot).
- ``ManagerView.from_status(data, now)``: is the manager alive (heartbeat), what it published,
  what it refused and why.
- ``MeshState.read(mesh)``: one consistent-enough read of registry, status files, snapshot.
- ``table(header, rows)``: kubectl-style columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.manager.registry import is_fresh, read_registry
from mesh.meshdir import (
    NOT_A_PROXY,
    RECORD_SUFFIX,
    ManagerStatus,
    MeshDir,
    ProxyStatus,
    RegistryRecord,
    list_files,
    read_json,
    read_snapshot,
)
from mesh.snapshot import Snapshot, SnapshotError

MANAGER_DOWN_AFTER = 6.0  # seconds without a heartbeat (it beats every second)
STATUS_STALE_AFTER = 10.0  # a sidecar's status heartbeat older than this: STALE

SYNCED, STALE, ERROR = "SYNCED", "STALE", "ERROR"


@dataclass(frozen=True)
class ProxyRow:
    pod: str
    role: str
    version: int | None
    status: str
    ready: bool
    detail: str = ""
    in_registry: bool = True

    @property
    def ok(self) -> bool:
        return self.status == SYNCED and self.ready


def proxy_row(
    pod: str,
    record: RegistryRecord | None,
    status: ProxyStatus | None,
    published: tuple[int, str] | None,
    now: float,
) -> ProxyRow:
    role = (record.role if record else None) or (status.role if status else "sidecar")
    fresh = record is not None and is_fresh(record, now)
    ready = bool(fresh and record is not None and record.ready)
    version = status.version if status else None
    if record is None:
        return ProxyRow(pod, role, version, STALE, False, "not in the registry", False)
    if not fresh:
        age = now - record.heartbeat
        return ProxyRow(pod, role, version, STALE, False, f"registry heartbeat {age:.0f}s old")
    if status is None:
        return ProxyRow(pod, role, None, STALE, ready, "no status reported yet")
    beat = status.heartbeat
    if beat is not None and now - beat > STATUS_STALE_AFTER:
        return ProxyRow(pod, role, version, STALE, ready, f"status heartbeat {now - beat:.0f}s old")
    if published is None:
        return ProxyRow(pod, role, version, STALE, ready, "nothing published yet")
    pub_version, pub_hash = published
    if status.error and status.error_version == pub_version:
        return ProxyRow(pod, role, version, ERROR, ready, status.error)
    if version == pub_version or (pub_hash and status.hash == pub_hash):
        return ProxyRow(pod, role, version, SYNCED, ready)
    return ProxyRow(pod, role, version, STALE, ready, f"published version is {pub_version}")


def proxy_rows(
    records: Iterable[RegistryRecord],
    statuses: Mapping[str, ProxyStatus],
    published: tuple[int, str] | None,
    now: float,
) -> list[ProxyRow]:
    by_pod = {r.pod: r for r in records}
    pods = sorted(set(by_pod) | set(statuses))
    return [proxy_row(p, by_pod.get(p), statuses.get(p), published, now) for p in pods]


@dataclass(frozen=True)
class ManagerView:
    """The manager as ``meshctl status`` tells it: its status file, and whether it is alive
    (a heartbeat within ``MANAGER_DOWN_AFTER``)."""

    status: ManagerStatus
    alive: bool
    heartbeat_age: float | None

    @classmethod
    def from_status(cls, data: Mapping[str, Any] | ManagerStatus | None, now: float) -> ManagerView:
        status = data if isinstance(data, ManagerStatus) else ManagerStatus.from_json(data)
        beat = status.heartbeat
        age = None if beat is None else max(0.0, now - beat)
        return cls(status, age is not None and age <= MANAGER_DOWN_AFTER, age)

    @property
    def pid(self) -> int | None:
        return self.status.pid

    @property
    def version(self) -> int | None:
        return self.status.version

    @property
    def config_read_at(self) -> float | None:
        return self.status.config_read_at

    @property
    def rejected_at(self) -> float | None:
        return self.status.rejected_at

    @property
    def rejected(self) -> tuple[dict[str, Any], ...]:
        return self.status.rejected_issues

    @property
    def warnings(self) -> tuple[dict[str, Any], ...]:
        return self.status.warnings


@dataclass
class MeshState:
    records: list[RegistryRecord] = field(default_factory=list)
    registry_problems: list[str] = field(default_factory=list)
    statuses: dict[str, ProxyStatus] = field(default_factory=dict)
    manager: ManagerStatus | None = None
    snapshot: Snapshot | None = None
    snapshot_error: str = ""

    @classmethod
    def read(cls, mesh: MeshDir, *, with_snapshot: bool = True) -> MeshState:
        state = cls()
        state.records, state.registry_problems = read_registry(mesh.registry)
        for path in list_files(mesh.status, (RECORD_SUFFIX,)):
            if path.name in NOT_A_PROXY:
                continue
            data = read_json(path)
            if data is not None:
                status = ProxyStatus.from_json(data, pod=path.stem)
                state.statuses[status.pod] = status
        manager = read_json(mesh.manager_status)
        state.manager = None if manager is None else ManagerStatus.from_json(manager)
        if with_snapshot:
            try:
                state.snapshot = read_snapshot(mesh)
            except FileNotFoundError:
                state.snapshot = None
            except (OSError, SnapshotError) as exc:
                state.snapshot_error = str(exc)
        return state

    def published(self) -> tuple[int, str] | None:
        if self.snapshot is not None:
            return self.snapshot.version, self.snapshot.hash
        manager = self.manager or ManagerStatus()
        version = manager.version
        return (version, manager.hash or "") if version is not None else None

    def rows(self, now: float) -> list[ProxyRow]:
        return proxy_rows(self.records, self.statuses, self.published(), now)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [list(map(str, header))] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def age(seconds: float | None) -> str:
    """kubectl's AGE: 42s, 5m, 3h, 2d."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
