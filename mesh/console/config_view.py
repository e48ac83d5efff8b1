"""What the live config says about each edge and service, from the routing engine's own tables.

Primitives: ``node_id(app, version)`` (the versioned-app graph's node names), ``ConfigView``
(``build(snapshot, proxies)`` compiles one route table per proxy exactly as that proxy's
sidecar does, ``compile_snapshot``) with ``configured`` — per (caller node, service) the share
of each destination node — and ``badges`` — per service what its config does.

A configured share exists only when it does not depend on the request: every rule through
which the caller can reach the service sends the same weighted split (a header match that
sends the tester elsewhere, or two gateway hosts routing differently, make it ``None``). A
rule's cluster with several pods splits its weight equally between them (round robin).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mesh.routing.decision import Cluster
from mesh.routing.routes import CompiledRule, ProxyIdentity, RouteTable
from mesh.routing.table import compile_snapshot
from mesh.snapshot import Snapshot

GATEWAY_NODE = "istio-ingressgateway"
Distribution = dict[str, float]


def node_id(app: str | None, version: str | None, workload: str | None = None) -> str:
    """``productpage-v2``; a pod without a version label is its app (``istio-ingressgateway``)."""
    known = {None, "", "unknown"}
    if app in known:
        return workload if workload not in known else "unknown"  # type: ignore[return-value]
    return f"{app}-{version}" if version not in known else str(app)


def service_name(host: str) -> str:
    """``reviews`` of ``reviews``, ``reviews.default`` or ``reviews.default.svc.cluster.local``."""
    return host.split(".", 1)[0]


@dataclass(frozen=True)
class Proxy:
    """A proxy the config is compiled for: its pod, labels and role."""

    pod: str
    labels: Mapping[str, str]
    gateway: bool = False

    @property
    def node(self) -> str:
        return node_id(self.labels.get("app"), self.labels.get("version"), self.pod)


@dataclass(frozen=True)
class Badge:
    kind: str
    label: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label}


@dataclass
class ConfigView:
    version: int | None = None
    configured: dict[tuple[str, str], Distribution | None] = field(default_factory=dict)
    badges: dict[str, list[Badge]] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: Snapshot | None, proxies: Iterable[Proxy]) -> ConfigView:
        if snapshot is None:
            return cls()
        view = cls(version=snapshot.version)
        distributions: dict[tuple[str, str], list[Distribution]] = defaultdict(list)
        badges: dict[str, dict[str, Badge]] = defaultdict(dict)
        seen_nodes: set[str] = set()
        for proxy in sorted(proxies, key=lambda p: p.pod):
            if proxy.node in seen_nodes:
                continue  # two pods of one version: one table is enough
            seen_nodes.add(proxy.node)
            table = compile_snapshot(
                snapshot, ProxyIdentity(proxy.pod, dict(proxy.labels), proxy.gateway)
            )
            for rule in _rules(table):
                per_service = _rule_distributions(rule)
                for service, dist in per_service.items():
                    distributions[(proxy.node, service)].append(dist)
                    for badge in _rule_badges(rule, dist):
                        badges[service].setdefault(badge.kind, badge)
        for key, dists in distributions.items():
            first = dists[0]
            same = all(_same(first, d) for d in dists[1:])
            view.configured[key] = first if same else None
            if not same:
                badges[key[1]].setdefault("routing", Badge("routing", "request routing (by match)"))
        for snapshot_cluster in _clusters(snapshot, proxies):
            service = service_name(snapshot_cluster.host)
            policy = snapshot_cluster.policy
            if policy.outlier_detection is not None or policy.connection_pool is not None:
                badges[service].setdefault(
                    "circuit-breaker", Badge("circuit-breaker", "circuit breaker")
                )
        view.badges = {s: sorted(b.values(), key=lambda x: x.kind) for s, b in badges.items()}
        return view


def _rules(table: RouteTable) -> Iterable[CompiledRule]:
    route_configs = [table.mesh, *table.gateway_routes.values()]
    seen: set[int] = set()
    for routes in route_configs:
        vhosts = [*routes.exact.values(), *(v for _, v in routes.suffixes)]
        if routes.catch_all is not None:
            vhosts.append(routes.catch_all)
        for vhost in vhosts:
            for rule in vhost.rules:
                if id(rule) not in seen:
                    seen.add(id(rule))
                    yield rule


def _cluster_nodes(cluster: Cluster) -> list[str]:
    return [node_id(e.labels.get("app"), e.labels.get("version"), e.pod) for e in cluster.endpoints]


def _rule_distributions(rule: CompiledRule) -> dict[str, Distribution]:
    """Per destination service: the share of the rule's traffic each node gets."""
    weights = rule.picker.weights if rule.picker else [100] * len(rule.targets)
    out: dict[str, Distribution] = defaultdict(dict)
    totals: dict[str, float] = defaultdict(float)
    for target, weight in zip(rule.targets, weights, strict=False):
        service = service_name(target.cluster.host)
        totals[service] += weight
        nodes = _cluster_nodes(target.cluster)
        for node in nodes:
            out[service][node] = out[service].get(node, 0.0) + weight / len(nodes)
    for service, dist in out.items():
        total = totals[service]
        for node in dist:
            dist[node] = dist[node] / total if total else 0.0
    return dict(out)


def _same(a: Distribution, b: Distribution) -> bool:
    keys = set(a) | set(b)
    return all(abs(a.get(k, 0.0) - b.get(k, 0.0)) < 1e-9 for k in keys)


def _rule_badges(rule: CompiledRule, dist: Distribution) -> list[Badge]:
    route = rule.route
    found = []
    if rule.matchers:
        found.append(Badge("routing", "request routing (by match)"))
    if len(rule.targets) > 1:
        weights = rule.picker.weights if rule.picker else []
        found.append(Badge("weighted-split", "weighted split " + "/".join(str(w) for w in weights)))
    if route.fault is not None:
        parts = []
        if route.fault.delay is not None:
            parts.append("delay")
        if route.fault.abort is not None:
            parts.append(f"abort {route.fault.abort.http_status or ''}".strip())
        found.append(Badge("fault-injection", "fault injection: " + ", ".join(parts)))
    if rule.mirrors:
        found.append(Badge("mirroring", "mirroring"))
    if route.timeout is not None:
        found.append(Badge("timeout", f"timeout {route.timeout}"))
    return found


def _clusters(snapshot: Snapshot, proxies: Iterable[Proxy]) -> Sequence[Cluster]:
    """Every cluster any proxy's table has (DestinationRule policies live there)."""
    found: dict[str, Cluster] = {}
    for proxy in proxies:
        if proxy.gateway:
            continue
        table = compile_snapshot(snapshot, ProxyIdentity(proxy.pod, dict(proxy.labels), False))
        found.update(table.clusters)
        break  # mesh clusters are the same for every sidecar
    return list(found.values())
