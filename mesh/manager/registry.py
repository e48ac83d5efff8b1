"""The pod registry: one record per pod, written by its sidecar, read by the manager and meshctl.

Primitives (the record itself, ``RegistryRecord``, is the planes' contract: ``mesh.meshdir``):
``is_fresh(record, now)`` (heartbeat younger than its TTL), ``snapshot_endpoints(records, now)``
(what routing may send traffic to: fresh, ready, not a gateway), ``validation_topology``
(the topology the validator assumes, with the live pods) and ``next_expiry`` (when the
next fresh record goes stale, so the manager re-evaluates without any file event).
``read_registry(dir)`` is the only I/O here.

Time is wall-clock unix time: heartbeats are written by other processes (other containers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from mesh.meshdir import ENDPOINT_ROLES, RECORD_SUFFIX, RecordError, RegistryRecord, list_files
from mesh.snapshot import Endpoint
from mesh.topology import Topology


def is_fresh(record: RegistryRecord, now: float) -> bool:
    """A record whose heartbeat is older than its TTL means a dead (or partitioned) pod."""
    return now < record.expires_at


def snapshot_endpoints(records: Iterable[RegistryRecord], now: float) -> tuple[Endpoint, ...]:
    """Endpoints that may get traffic: fresh, ready sidecars (a gateway is nobody's upstream)."""
    chosen = [
        r.endpoint()
        for r in records
        if r.role in ENDPOINT_ROLES and r.ready and r.service and is_fresh(r, now)
    ]
    return tuple(sorted(chosen, key=lambda e: (e.namespace, e.service, e.pod)))


def analysis_endpoints(records: Iterable[RegistryRecord], now: float) -> tuple[Endpoint, ...]:
    """What the validator should know as deployed pods: every fresh sidecar, ready or not.

    Kubernetes counts a not-ready pod as selected by a subset (IST0173 is about labels, not
    readiness), so a pod that turns unready must not make the config look broken.
    """
    chosen = [r.endpoint() for r in records if r.role in ENDPOINT_ROLES and is_fresh(r, now)]
    return tuple(sorted(chosen, key=lambda e: (e.namespace, e.service, e.pod)))


def validation_topology(
    topology: Topology, records: Iterable[RegistryRecord], now: float
) -> Topology:
    """What the validator should assume: the topology's Services, with the live pods (every
    fresh sidecar) when any is registered, else the topology's own pods — e.g. ``meshctl
    apply`` into a mesh directory whose lab is down.

    Services are always the topology's (plus those live pods name), as a Kubernetes Service
    exists whether or not its pods are up, so a restarting pod never makes routes to it
    "host not found".
    """
    live = analysis_endpoints(records, now)
    if not live:
        return topology
    return topology.with_app_pods(e.as_pod() for e in live)


def next_expiry(records: Iterable[RegistryRecord], now: float) -> float | None:
    """The earliest time a currently fresh record goes stale (None if none is fresh)."""
    times = [r.expires_at for r in records if is_fresh(r, now)]
    return min(times) if times else None


def parse_records(
    raw: Sequence[tuple[str, bytes]],
) -> tuple[list[RegistryRecord], list[str]]:
    """Parse ``(file name, content)`` pairs; bad files become messages, not exceptions.

    When two files claim the same pod, the newer heartbeat wins.
    """
    records: dict[str, RegistryRecord] = {}
    problems: list[str] = []
    for name, content in raw:
        try:
            record = RegistryRecord.from_json(json.loads(content), source=name)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(str(exc) if isinstance(exc, RecordError) else f"{name}: {exc}")
            continue
        known = records.get(record.pod)
        if known is None or record.heartbeat > known.heartbeat:
            records[record.pod] = record
    return sorted(records.values(), key=lambda r: r.pod), problems


def read_registry(directory: Path) -> tuple[list[RegistryRecord], list[str]]:
    raw: list[tuple[str, bytes]] = []
    for path in list_files(directory, (RECORD_SUFFIX,)):
        try:
            raw.append((path.name, path.read_bytes()))
        except OSError:
            continue  # removed between listdir and read: the pod is gone
    return parse_records(raw)
