"""Destinations → clusters: the DestinationRule that applies to a host (exact name first,
then the longest wildcard), its subset's endpoints (by labels) and its traffic policy
(subset over rule, port-level over both), cached per cluster name.

Primitives: ``ClusterBuilder`` (one per compiled table) and ``labels_match``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mesh.config import hosts as hostnames
from mesh.config.issues import SCHEMA_VALIDATION_ERROR, ConfigError, Issue
from mesh.config.model import NO_POLICY, Destination, DestinationRule
from mesh.routing.decision import Cluster
from mesh.snapshot import Endpoint

# A destination without a port goes to the Bookinfo port (every lab Service listens there).
DEFAULT_SERVICE_PORT = 9080


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class ClusterBuilder:
    """Resolves destinations to clusters: DestinationRule subsets, policies, endpoints."""

    def __init__(self, rules: Sequence[DestinationRule], endpoints: Sequence[Endpoint]) -> None:
        self.rules: dict[str, DestinationRule] = {}
        self.wildcard_rules: list[tuple[str, DestinationRule]] = []
        for rule in rules:
            host = hostnames.normalize(rule.host)
            if host.startswith("*"):
                self.wildcard_rules.append((host, rule))
            else:
                self.rules.setdefault(host, rule)
        self.wildcard_rules.sort(key=lambda item: -len(item[0]))
        self.endpoints: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            if endpoint.ready:
                self.endpoints.setdefault(hostnames.normalize(endpoint.service), []).append(
                    endpoint
                )
        self.clusters: dict[str, Cluster] = {}

    def rule_for(self, host: str) -> DestinationRule | None:
        rule = self.rules.get(host)
        if rule is not None:
            return rule
        for pattern, candidate in self.wildcard_rules:
            if hostnames.host_matches(pattern, host):
                return candidate
        return None

    def cluster(self, destination: Destination) -> Cluster:
        host = hostnames.normalize(destination.host)
        if not host:
            # Envoy refuses a route to a cluster without a name (it NACKs the push): a proxy
            # cannot build this, whatever let it through.
            raise ConfigError(
                [Issue("Error", SCHEMA_VALIDATION_ERROR, "destination host is required")]
            )
        port = (
            destination.port.number
            if destination.port is not None and destination.port.number
            else DEFAULT_SERVICE_PORT
        )
        subset_name = destination.subset or None
        name = f"outbound|{port}|{subset_name or ''}|{hostnames.fqdn(host)}"
        cached = self.clusters.get(name)
        if cached is not None:
            return cached
        rule = self.rule_for(host)
        policy = (rule.traffic_policy or NO_POLICY) if rule is not None else NO_POLICY
        endpoints = self.endpoints.get(host, [])
        defined = True
        if subset_name is not None:
            subset = (
                next((s for s in rule.subsets if s.name == subset_name), None) if rule else None
            )
            if subset is None:
                defined = False
                endpoints = []
            else:
                endpoints = [e for e in endpoints if labels_match(subset.labels, e.labels)]
                policy = policy.overridden_by(subset.traffic_policy)
        policy = policy.for_port(port)
        built = Cluster(name, host, subset_name, port, tuple(endpoints), policy, defined)
        self.clusters[name] = built
        return built
