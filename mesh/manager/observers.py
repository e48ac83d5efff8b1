"""What the manager writes for the lab's observers: Prometheus scrape targets, config history.

Both live in ``$MESH_DIR/observe/`` (``MeshDir.scrape_targets``, ``MeshDir.config_history``):

- ``targets.json``: Prometheus file-based service discovery (``file_sd_configs``): one target
  group per fresh registry record, the proxy's admin address (``/stats/prometheus``), with the
  labels ``pod``, ``role``, ``app``, ``version`` and ``namespace`` when the pod has them.
  ``ScrapeTargets.update(records, now)`` rewrites it only when the set changes.
- ``history.json``: the config timeline, one entry per published snapshot version:
  ``{"version", "time" (UTC, ISO 8601 with ms and Z), "changed": ["VirtualService
  default/bookinfo", ...], "resources": {"created"|"configured"|"deleted": [...]},
  "endpoints": {"added": [pods], "removed": [pods]}, "digests": {resource: sha256}}``,
  newest last, at most ``HISTORY_LIMIT`` entries. ``ConfigHistory.record(previous,
  published)`` appends and rewrites the file; a restarted manager continues the file.

``diff_snapshots`` and ``scrape_groups`` are pure; ``Observers`` is what the manager calls (once
after reading the registry, once per publish).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mesh.manager.compile import resource_key
from mesh.manager.registry import is_fresh
from mesh.meshdir import MeshDir, RegistryRecord, atomic_write
from mesh.snapshot import Snapshot

HISTORY_LIMIT = 500
TARGET_LABELS = ("app", "version", "namespace")


def iso_time(unix: float) -> str:
    """``2026-11-26T14:28:09.123Z``."""
    whole = int(unix)
    millis = int(round((unix - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


# ---------------------------------------------------------------- scrape targets


def scrape_groups(records: Iterable[RegistryRecord], now: float) -> list[dict[str, Any]]:
    """File-SD target groups of every fresh proxy with an admin port, sorted by pod."""
    groups = []
    for record in sorted(records, key=lambda r: r.pod):
        if not is_fresh(record, now) or not record.admin_port:
            continue
        address = record.admin_address or record.address
        labels = {"pod": record.pod, "role": record.role}
        for name in TARGET_LABELS:
            if record.labels.get(name):
                labels[name] = record.labels[name]
        groups.append({"targets": [f"{address}:{record.admin_port}"], "labels": labels})
    return groups


class ScrapeTargets:
    """Keeps ``observe/targets.json`` equal to the registry's fresh proxies."""

    def __init__(self, mesh: MeshDir) -> None:
        self.path = mesh.scrape_targets
        self.written: str | None = None

    def update(self, records: Iterable[RegistryRecord], now: float) -> bool:
        """Rewrite the file if the target set changed; True when it did."""
        text = json.dumps(scrape_groups(records, now), indent=1, sort_keys=True) + "\n"
        if text == self.written:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, text, durable=False)
        self.written = text
        return True


# ---------------------------------------------------------------- config history


def _label(key: tuple[str, str, str]) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}"


def resource_digest(raw: Mapping[str, Any]) -> str:
    """A resource's content hash (canonical JSON), as the console computes it for scenarios."""
    body = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def diff_snapshots(previous: Snapshot | None, published: Snapshot) -> dict[str, Any]:
    """What changed from ``previous`` to ``published`` (everything, when there is none)."""
    before = {resource_key(r): r for r in (previous.resources if previous else ())}
    after = {resource_key(r): r for r in published.resources}
    created = sorted(k for k in after if k not in before)
    deleted = sorted(k for k in before if k not in after)
    configured = sorted(
        k for k in after if k in before and resource_digest(after[k]) != resource_digest(before[k])
    )
    pods_before = {e.pod for e in (previous.endpoints if previous else ())}
    pods_after = {e.pod for e in published.endpoints}
    return {
        "version": published.version,
        "time": iso_time(published.generated_at),
        "changed": [_label(k) for k in sorted([*created, *configured, *deleted])],
        "resources": {
            "created": [_label(k) for k in created],
            "configured": [_label(k) for k in configured],
            "deleted": [_label(k) for k in deleted],
        },
        "endpoints": {
            "added": sorted(pods_after - pods_before),
            "removed": sorted(pods_before - pods_after),
        },
        "digests": {_label(k): resource_digest(after[k]) for k in [*created, *configured]},
    }


def read_history(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    if not isinstance(data, list):
        return []
    return [e for e in data if isinstance(e, dict) and isinstance(e.get("version"), int)]


class ConfigHistory:
    """The bounded timeline in ``observe/history.json``."""

    def __init__(self, mesh: MeshDir, limit: int = HISTORY_LIMIT) -> None:
        self.path = mesh.config_history
        self.limit = limit
        self.entries: list[dict[str, Any]] = read_history(self.path)[-limit:]

    def record(self, previous: Snapshot | None, published: Snapshot) -> dict[str, Any]:
        entry = diff_snapshots(previous, published)
        # A version already there (a manager restarted from an older file) is replaced.
        self.entries = [e for e in self.entries if e["version"] < published.version]
        self.entries.append(entry)
        del self.entries[: -self.limit]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(self.entries, indent=1) + "\n", durable=False)
        return entry

    @property
    def versions(self) -> Sequence[int]:
        return [e["version"] for e in self.entries]


class Observers:
    """Both files, behind the two calls the manager makes; a failed write is reported through
    ``say`` and never stops publishing."""

    def __init__(self, mesh: MeshDir, say: Callable[[str], None]) -> None:
        self.say = say
        self.targets = ScrapeTargets(mesh)
        self.history = ConfigHistory(mesh)

    def registry_read(self, records: Iterable[RegistryRecord], now: float) -> None:
        try:
            self.targets.update(records, now)
        except OSError as exc:
            self.say(f"cannot write {self.targets.path}: {exc}")

    def published(self, previous: Snapshot | None, snapshot: Snapshot) -> None:
        try:
            self.history.record(previous, snapshot)
        except OSError as exc:
            self.say(f"cannot write {self.history.path}: {exc}")
