"""From loaded config and registry records to the next snapshot (pure: values in, values out).

Primitives:

- ``blocking(issues)``: the findings that refuse a config: every error (a subset that selects
  no pods yet, IST0173, is a warning: Lab decision 10).
- ``resource_key(raw)`` / ``sort_resources(raws)``: the deterministic order of resources in a
  snapshot (kind, namespace, name), so the content hash only changes when content does.
- ``next_snapshot(published, raws, endpoints, now, services=...)``: a new ``Snapshot`` (with
  the service catalog) with the next version, or None when the content hash equals the
  published one (nothing is re-published).
- ``next_version(*known)``: strictly above every version seen, so versions continue across
  manager restarts (the snapshot on disk and status/manager.json both remember).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from mesh.config.issues import Issue
from mesh.snapshot import Endpoint, Snapshot
from mesh.topology import Service

DEFAULT_NAMESPACE = "default"


def blocking(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.is_error]


def resource_key(raw: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name) of a raw Istio document."""
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return (
        str(raw.get("kind", "")),
        str(meta.get("namespace") or DEFAULT_NAMESPACE),
        str(meta.get("name", "")),
    )


def sort_resources(raws: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    # A JSON round trip makes the resources plain (no YAML dates, tuples) and detaches them.
    plain = [json.loads(json.dumps(r, sort_keys=True, default=str)) for r in raws]
    return tuple(sorted(plain, key=lambda r: (resource_key(r), json.dumps(r, sort_keys=True))))


def next_version(*known: int | None) -> int:
    return max((v for v in known if v is not None), default=0) + 1


def next_snapshot(
    published: Snapshot | None,
    raws: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Endpoint],
    now: float,
    *,
    floor_version: int = 0,
    services: Iterable[Service] = (),
) -> Snapshot | None:
    """The snapshot to publish, or None when its content equals ``published``."""
    resources = sort_resources(raws)
    eps = tuple(sorted(endpoints, key=lambda e: (e.namespace, e.service, e.pod)))
    catalog = tuple(services)
    digest = Snapshot.content_hash(resources, eps, catalog)
    if published is not None and published.hash == digest:
        return None
    version = next_version(published.version if published else None, floor_version)
    return Snapshot(
        version=version,
        resources=resources,
        endpoints=eps,
        hash=digest,
        generated_at=now,
        services=catalog,
    )
