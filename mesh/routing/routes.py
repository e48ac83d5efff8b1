"""A proxy's compiled route table, as plain data: what ``mesh.routing.table`` builds once per
snapshot and ``mesh.routing.select.decide`` reads per request.

Primitives: ``ProxyIdentity`` (who the table is for: a sidecar or a gateway, by labels),
``WeightedPicker`` (smooth weighted round-robin, Lab decision 3), ``RouteTarget`` and
``CompiledRule`` (one ``http[]`` entry with compiled matchers and resolved clusters),
``VirtualHost`` (ordered rules for a set of host names; ``MatchPlan``: the rules a header
pattern can match), ``RouteConfig`` (the vhosts of one port, Envoy's RouteConfiguration),
``RouteTable`` (the mesh's RouteConfig, a gateway's per server port, and every reachable
``Cluster``). The per-table memos are bounded (``MEMO_LIMIT``) whatever names clients send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.config import hosts as hostnames
from mesh.config.model import (
    HTTPRoute,
)
from mesh.config.resource import Resource
from mesh.resilience.retry import DEFAULT_RETRY, RetryPolicy
from mesh.routing.decision import NO_HEADER_OPS, Cluster, Forward, HeaderOps
from mesh.routing.match import RequestMatcher
from mesh.topology import DEFAULT_NAMESPACE

# Entries kept by the per-table memos (authority -> vhost, request -> Forward) before they
# start over: bounded whatever names and paths clients send.
MEMO_LIMIT = 256
MESH_GATEWAY = "mesh"


@dataclass(frozen=True, slots=True)
class ProxyIdentity:
    """The proxy a table is compiled for."""

    pod: str
    labels: Mapping[str, str] = field(default_factory=dict)
    gateway: bool = False
    namespace: str = DEFAULT_NAMESPACE


class WeightedPicker:
    """Smooth weighted round-robin (nginx's): any Σweight consecutive picks match the weights.

    Each pick adds every weight to its running score, takes the highest, and subtracts the
    total from the winner — so 70/30 yields 7 and 3 in every window of 10, interleaved.
    """

    __slots__ = ("weights", "scores", "total")

    def __init__(self, weights: Sequence[int]) -> None:
        self.weights = list(weights)
        self.scores = [0] * len(weights)
        self.total = sum(weights)

    def pick(self) -> int:
        scores = self.scores
        best = 0
        for i, weight in enumerate(self.weights):
            scores[i] += weight
            if scores[i] > scores[best]:
                best = i
        scores[best] -= self.total
        return best


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """A weighted destination; its header operations already merged with the rule's
    (Istio applies the rule's first, then the destination's), once, at compile time."""

    cluster: Cluster
    request_headers: HeaderOps
    response_headers: HeaderOps


@dataclass(slots=True)
class CompiledRule:
    """One ``http[]`` rule ready for ``decide``; ``matchers`` empty = matches everything."""

    virtual_service: str
    index: int
    name: str | None
    matchers: tuple[RequestMatcher, ...]
    route: HTTPRoute
    targets: tuple[RouteTarget, ...] = ()
    picker: WeightedPicker | None = None
    retry: RetryPolicy = DEFAULT_RETRY
    mirrors: tuple[tuple[Cluster, float], ...] = ()
    request_headers: HeaderOps = NO_HEADER_OPS
    response_headers: HeaderOps = NO_HEADER_OPS
    uri_regex: Any = None  # compiled RE2 for uriRegexRewrite (google-re2 has no types)
    direct_body: bytes = b""
    # (target index, path, authority, matched prefix) -> its Forward, for rules whose
    # answer rolls nothing (no fault, no mirror): built once, not per request (``_act``).
    forwards: dict[tuple[int, str, str, str | None], Forward] = field(default_factory=dict)


MatchPlan = tuple[tuple[CompiledRule, tuple[RequestMatcher, ...]], ...]


@dataclass(slots=True)
class VirtualHost:
    """Ordered rules for a set of host names.

    ``plan(headers)`` is what ``decide`` walks: the rules with only those of their matchers
    whose required headers the request has (a catch-all rule with none). Requests of a mesh
    come in a handful of header-presence patterns, so plans are kept per pattern and a
    rule keyed on a header the request lacks costs nothing.
    """

    names: tuple[str, ...]
    rules: list[CompiledRule]
    relevant: frozenset[str] = frozenset()
    plans: dict[frozenset[str], MatchPlan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.set_rules(self.rules)

    def set_rules(self, rules: list[CompiledRule]) -> None:
        """Replace the rules (a gateway merging several VirtualServices for one name)."""
        self.rules = rules
        self.relevant = frozenset(
            name for rule in rules for matcher in rule.matchers for name in matcher.required
        )
        self.plans = {}

    def plan(self, headers: Mapping[str, str]) -> MatchPlan:
        present = self.relevant.intersection(headers)
        plan = self.plans.get(present)
        if plan is None:
            plan = tuple(
                (rule, tuple(m for m in rule.matchers if m.required <= present))
                for rule in self.rules
                if not rule.matchers or any(m.required <= present for m in rule.matchers)
            )
            if len(self.plans) >= MEMO_LIMIT:
                self.plans.clear()
            self.plans[present] = plan
        return plan


@dataclass(slots=True)
class RouteConfig:
    """The vhosts reachable on one port (Envoy's RouteConfiguration): exact names, wildcard
    suffixes, then ``*``."""

    exact: dict[str, VirtualHost] = field(default_factory=dict)
    suffixes: list[tuple[str, VirtualHost]] = field(default_factory=list)  # longest first
    catch_all: VirtualHost | None = None
    # Host header as sent -> its vhost: a mesh proxy sees a handful of authorities, and
    # normalising one (port, case, namespace suffixes) costs more than the lookup itself.
    by_authority: dict[str, VirtualHost | None] = field(default_factory=dict)
    served: tuple[str, ...] | None = None  # served_hosts(), once asked

    def resolve(self, authority: str) -> VirtualHost | None:
        """The vhost for a Host header as sent (``reviews:9080``, ``Reviews.default``...)."""
        try:
            return self.by_authority[authority]
        except KeyError:
            pass
        vhost = self.lookup(hostnames.bare(authority))
        memo = self.by_authority
        if len(memo) >= MEMO_LIMIT:  # hostile clients inventing names: start over
            memo.clear()
        memo[authority] = vhost
        return vhost

    def lookup(self, host: str) -> VirtualHost | None:
        vhost = self.exact.get(host)
        if vhost is not None:
            return vhost
        for suffix, candidate in self.suffixes:
            if host.endswith(suffix) and len(host) > len(suffix):
                return candidate
        return self.catch_all

    def served_hosts(self) -> tuple[str, ...]:
        """The hosts these routes serve, one name per virtual host (exact names, ``*.suffix``
        wildcards, ``*`` last), sorted: what a 404 NR reply tells a client that asked for
        another one. Made on the first miss, then kept until a host is added."""
        if self.served is None:
            # One name per virtual host, its shortest (``reviews``, not its four aliases).
            vhosts = {id(v): v for v in [*self.exact.values(), *(v for _, v in self.suffixes)]}
            shortest = [min(v.names, key=len) for v in vhosts.values() if v.names]
            names = sorted(shortest, key=lambda name: (name.startswith("*"), name))
            self.served = (*names, "*") if self.catch_all is not None else tuple(names)
        return self.served

    def add(self, name: str, vhost: VirtualHost) -> None:
        self.served = None
        if name == "*":
            self.catch_all = vhost
        elif name.startswith("*."):
            self.suffixes.append((name[1:], vhost))
            self.suffixes.sort(key=lambda item: -len(item[0]))
        else:
            self.exact[name] = vhost


@dataclass(slots=True)
class RouteTable:
    version: int
    proxy: ProxyIdentity
    mesh: RouteConfig
    gateway_routes: dict[int, RouteConfig]
    clusters: dict[str, Cluster]
    resources: tuple[Resource, ...] = ()

    def vhost_for(self, host: str, port: int | None) -> VirtualHost | None:
        """The vhost a request for ``host`` reaches (a gateway's: on its listener for
        ``port``)."""
        # Inline rather than through routes_for: this runs on every request.
        if self.proxy.gateway:
            listener = self.gateway_routes.get(port or 80)
            return listener.resolve(host) if listener is not None else None
        return self.mesh.resolve(host)

    def routes_for(self, port: int | None) -> RouteConfig | None:
        """The routes a request addressed on ``port`` reaches (a sidecar has one set)."""
        if self.proxy.gateway:
            return self.gateway_routes.get(port or 80)
        return self.mesh

    @property
    def gateway_ports(self) -> tuple[int, ...]:
        return tuple(sorted(self.gateway_routes))

    def describe(self) -> dict[str, object]:
        """A JSON-able view for ``/config_dump``."""

        def vhosts(listener: RouteConfig) -> list[dict[str, object]]:
            seen: dict[int, VirtualHost] = {}
            for vhost in [*listener.exact.values(), *(v for _, v in listener.suffixes)]:
                seen[id(vhost)] = vhost
            if listener.catch_all is not None:
                seen[id(listener.catch_all)] = listener.catch_all
            return [
                {
                    "domains": list(v.names),
                    "routes": [
                        {
                            "virtual_service": r.virtual_service,
                            "rule": r.index,
                            "name": r.name,
                            "matches": len(r.matchers),
                            "clusters": [t.cluster.name for t in r.targets],
                            "weights": r.picker.weights if r.picker else [],
                        }
                        for r in v.rules
                    ],
                }
                for v in seen.values()
            ]

        return {
            "version": self.version,
            "proxy": self.proxy.pod,
            "mesh": vhosts(self.mesh),
            "gateway": {str(port): vhosts(lst) for port, lst in self.gateway_routes.items()},
            "clusters": {
                name: {
                    "host": c.host,
                    "subset": c.subset,
                    "port": c.port,
                    "defined": c.defined,
                    "endpoints": [e.key for e in c.endpoints],
                }
                for name, c in self.clusters.items()
            },
        }
