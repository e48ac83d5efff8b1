"""The versioned-app graph (Kiali's role) from Prometheus samples, the config view and ejections.

Pure: samples, registry pods, ``ConfigView`` and ejection records in; the ``/api/graph`` JSON
out (contract: DESIGN.md "Observability").

- Edges come from ``istio_requests_total{reporter="source"}`` (the caller's proxy sees every
  request, also those that never reached a pod: a fault-injected abort or no healthy
  upstream has ``destination_workload="unknown"`` and lands on the *service* node, e.g.
  ``reviews``, as in Kiali); a caller without a proxy (``sleep`` in ``legacy``) is seen by
  the callee's proxy only, with ``source_workload="unknown"``: the ``unknown`` node.
- ``share`` is the edge's part of the caller's requests to the same destination service, with
  a 95 % Wilson score interval ``share_ci95``; ``configured_share`` is what the config sends
  there (``None`` when that depends on the request); ``rps`` is requests per second over the
  window; ``error_rate`` counts 5xx and requests without a response; ``flags`` counts Envoy's
  response flags; ``p95_ms`` comes from the duration histogram; ``mtls`` (and the edge's ``principals``) from the destination
  proxy's ``connection_security_policy``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.console.config_view import GATEWAY_NODE, ConfigView, node_id

Z95 = 1.959963984540054
DURATION = re.compile(r"^(\d+)(s|m|h)$")
MIN_WINDOW, MAX_WINDOW = 5, 3600

Labels = Mapping[str, str]


def parse_duration(text: str) -> int:
    """``30s``, ``2m``, ``1h`` → seconds, within [5 s, 1 h]; ``ValueError`` says why not."""
    match = DURATION.match(text.strip())
    if not match:
        raise ValueError(f"duration {text!r}: expected a number and s, m or h (e.g. 30s)")
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise ValueError(f"duration {text!r}: must be between {MIN_WINDOW}s and 1h")
    return seconds


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion k/n (None when n is 0)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def source_node(labels: Labels) -> str:
    return node_id(
        labels.get("source_app"), labels.get("source_version"), labels.get("source_workload")
    )


def destination_node(labels: Labels) -> str:
    workload = labels.get("destination_workload", "unknown")
    if workload in ("", "unknown"):
        return labels.get("destination_service_name") or "unknown"
    return node_id(labels.get("destination_app"), labels.get("destination_version"), workload)


@dataclass(frozen=True)
class Pod:
    pod: str
    app: str
    version: str
    namespace: str = "default"
    gateway: bool = False

    @property
    def node(self) -> str:
        return node_id(self.app, self.version, self.pod)


@dataclass(frozen=True)
class Ejection:
    """One caller's outlier detection holding one upstream pod out (from ``status/<pod>.json``)."""

    pod: str
    by: str
    until: float


@dataclass
class _Edge:
    source: str
    target: str
    service: str
    count: float = 0.0
    errors: float = 0.0
    flags: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def build_graph(
    *,
    window: int,
    requests: Iterable[tuple[Labels, float]],
    p95: Iterable[tuple[Labels, float]] = (),
    security: Iterable[tuple[Labels, float]] = (),
    pods: Sequence[Pod] = (),
    view: ConfigView | None = None,
    ejections: Sequence[Ejection] = (),
    now: float = 0.0,
) -> dict[str, Any]:
    """``requests``: what ``istio_requests_total{reporter="source"}`` counted over ``window``
    seconds (``prometheus.counted``) by source/destination app, version, workload, service,
    code and flags."""
    view = view or ConfigView()
    edges: dict[tuple[str, str], _Edge] = {}
    totals: dict[tuple[str, str], float] = defaultdict(float)
    nodes: dict[str, dict[str, Any]] = {}

    def node(
        nid: str, app: str | None, version: str | None, namespace: str | None, kind: str
    ) -> None:
        if nid not in nodes:
            nodes[nid] = {
                "id": nid,
                "app": app if app not in (None, "unknown") else nid,
                "version": version if version not in (None, "", "unknown") else None,
                "namespace": namespace if namespace not in (None, "unknown") else "default",
                "kind": kind,
                "pods": [],
                "badges": [],
                "ejected": [],
            }

    for pod in pods:
        kind = "gateway" if pod.gateway else "app"
        node(pod.node, pod.app, pod.version, pod.namespace, kind)
        nodes[pod.node]["pods"].append(pod.pod)

    for labels, value in requests:
        if value <= 0:
            continue
        src = source_node(labels)
        dst = destination_node(labels)
        service = labels.get("destination_service_name") or "unknown"
        src_kind = "gateway" if src == GATEWAY_NODE else "unknown" if src == "unknown" else "app"
        node(
            src,
            labels.get("source_app"),
            labels.get("source_version"),
            labels.get("source_workload_namespace"),
            src_kind,
        )
        dst_is_service = labels.get("destination_workload", "unknown") in ("", "unknown")
        node(
            dst,
            service if dst_is_service else labels.get("destination_app"),
            None if dst_is_service else labels.get("destination_version"),
            labels.get("destination_service_namespace"),
            "service" if dst_is_service else "app",
        )
        edge = edges.get((src, dst))
        if edge is None:
            edge = edges[(src, dst)] = _Edge(src, dst, service)
        edge.count += value
        totals[(src, service)] += value
        code = labels.get("response_code", "")
        if code == "0" or code.startswith("5"):
            edge.errors += value
        for flag in (labels.get("response_flags") or "-").split(","):
            if flag and flag != "-":
                edge.flags[flag] += value

    # Configured destinations that got nothing yet (a canary's v2 before its first request).
    for (src, service), dist in view.configured.items():
        if dist is None or (src, service) not in totals:
            continue
        for dst in dist:
            if (src, dst) not in edges and dst in nodes:
                edges[(src, dst)] = _Edge(src, dst, service)

    latency = {(source_node(lb), destination_node(lb)): v for lb, v in p95 if not math.isnan(v)}
    mtls: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    # The identities an mTLS edge's certificates carried (Istio's source_principal and
    # destination_principal, as the destination's proxy verified them).
    principals: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(
        lambda: {"source": set(), "destination": set()}
    )
    for labels, value in security:
        key = (source_node(labels), destination_node(labels))
        policy = labels.get("connection_security_policy", "unknown")
        mtls[key][policy] += value
        if policy == "mutual_tls" and value > 0:
            for side in ("source", "destination"):
                principal = labels.get(f"{side}_principal", "unknown")
                if principal and principal != "unknown":
                    principals[key][side].add(principal)

    out_edges = []
    for (src, dst), edge in sorted(edges.items()):
        total = totals.get((src, edge.service), 0.0)
        ci = wilson(round(edge.count), round(total))
        dist = view.configured.get((src, edge.service))
        configured = None
        if dist is not None and nodes.get(dst, {}).get("kind") != "service":
            configured = round(dist.get(dst, 0.0), 4)
        policies = mtls.get((src, dst), {})
        out_edges.append(
            {
                "source": src,
                "target": dst,
                "service": edge.service,
                "requests": round(edge.count),
                "rps": round(edge.count / window, 3),
                "share": round(edge.count / total, 4) if total else None,
                "share_ci95": [round(ci[0], 4), round(ci[1], 4)] if ci else None,
                "configured_share": configured,
                "error_rate": round(edge.errors / edge.count, 4) if edge.count else 0.0,
                "p95_ms": round(latency[(src, dst)], 1) if (src, dst) in latency else None,
                "flags": {f: round(n) for f, n in sorted(edge.flags.items()) if round(n)},
                "mtls": bool(policies)
                and policies.get("mutual_tls", 0) > 0
                and all(v <= 0 for k, v in policies.items() if k != "mutual_tls"),
                "principals": {
                    side: sorted(names) for side, names in principals.get((src, dst), {}).items()
                },
            }
        )

    by_pod = {pod.pod: pod.node for pod in pods}
    for ejection in ejections:
        nid = by_pod.get(ejection.pod)
        if nid is None or nid not in nodes or ejection.until <= now:
            continue
        nodes[nid]["ejected"].append(
            {"pod": ejection.pod, "by": ejection.by, "seconds_left": round(ejection.until - now, 1)}
        )
    for data in nodes.values():
        badges = [b.to_json() for b in view.badges.get(data["app"], [])]
        if data["ejected"]:
            pods_out = sorted({e["pod"] for e in data["ejected"]})
            badges.append({"kind": "ejected", "label": "ejected: " + ", ".join(pods_out)})
        data["badges"] = badges
        data["pods"] = sorted(data["pods"])
    return {
        "config_version": view.version,
        "window_seconds": window,
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "edges": out_edges,
    }


def parse_ejections(pod: str, status: Mapping[str, Any]) -> list[Ejection]:
    """The ``ejected`` field of ``status/<pod>.json``: ``[{"pod": NAME, "until": UNIX}]``
    (other fields ignored); missing or malformed entries are skipped."""
    found: list[Ejection] = []
    entries = status.get("ejected")
    if not isinstance(entries, list):
        return found
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        try:
            found.append(Ejection(str(entry["pod"]), pod, float(entry["until"])))
        except (KeyError, TypeError, ValueError):
            continue
    return found
