"""Destinations → clusters: the DestinationRule that applies to a host, as Istio looks it up
(the client's namespace, then the Service's, then the root namespace, each only with rules
exported to the client; exact host first, then the longest wildcard), its subset's endpoints
(by labels) and its traffic policy (subset over rule, port-level over both), cached per
cluster name. Hosts resolve in the namespace of the resource that names them.

Primitives: ``ClusterBuilder`` (one per compiled table) and ``labels_match``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mesh.config import hosts as hostnames
from mesh.config.issues import SCHEMA_VALIDATION_ERROR, ConfigError, Issue
from mesh.config.model import NO_POLICY, Destination, DestinationRule
from mesh.config.resource import Resource
from mesh.routing.decision import Cluster
from mesh.snapshot import Endpoint
from mesh.topology import DEFAULT_NAMESPACE, ROOT_NAMESPACE, Service, exported_to

# A destination without a port goes to the Bookinfo port (every lab Service listens there).
DEFAULT_SERVICE_PORT = 9080


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True, slots=True)
class _Rule:
    """A DestinationRule with its host resolved in its namespace."""

    host: str
    namespace: str
    spec: DestinationRule
    export_to: tuple[str, ...]

    @property
    def private(self) -> bool:
        # Istio's "private only": exported to nobody beyond its own namespace.
        own = ("." in self.export_to or self.namespace in self.export_to) and len(
            self.export_to
        ) == 1
        return own or self.spec.workload_selector is not None


def _most_specific(rules: Iterable[_Rule], host: str) -> _Rule | None:
    """The rule for ``host``: an exact host first, else the longest wildcard covering it (the
    first of equals wins: several rules for one host are not merged by the lab)."""
    best: _Rule | None = None
    for rule in rules:
        if rule.host == host:
            return rule
        if rule.host.startswith("*") and hostnames.host_matches(rule.host, host):
            if best is None or len(rule.host) > len(best.host):
                best = rule
    return best


class ClusterBuilder:
    """Resolves destinations to clusters: DestinationRule subsets, policies, endpoints.

    Which DestinationRule applies follows Istio (push_context ``destinationRule``): the
    client's own namespace first, then the Service's namespace, then the config root
    namespace, each only with rules exported to the client.
    """

    def __init__(
        self,
        rules: Sequence[Resource],
        endpoints: Sequence[Endpoint],
        services: Iterable[Service] = (),
        client_namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.client = client_namespace
        self.rules = [
            _Rule(
                hostnames.qualify(r.spec.host, r.namespace),
                r.namespace,
                r.spec,
                tuple(r.spec.export_to),
            )
            for r in rules
        ]
        self.endpoints: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            if endpoint.ready:
                self.endpoints.setdefault(endpoint.fqdn, []).append(endpoint)
        self.services = {s.fqdn: s for s in services}
        self.clusters: dict[str, Cluster] = {}

    def rule_for(self, host: str) -> DestinationRule | None:
        client = self.client
        if client != ROOT_NAMESPACE:
            local = (
                r
                for r in self.rules
                if r.namespace == client and exported_to(r.export_to, r.namespace, client)
            )
        else:
            local = (r for r in self.rules if r.namespace == client and r.private)
        found = _most_specific(local, host)
        if found is not None:
            return found.spec
        service = hostnames.service_of(host)
        owners = [service[1]] if service is not None else []
        for owner in [*owners, ROOT_NAMESPACE]:
            exported = (
                r
                for r in self.rules
                if r.namespace == owner
                and not r.private
                and exported_to(r.export_to, r.namespace, client)
            )
            found = _most_specific(exported, host)
            if found is not None:
                return found.spec
        return None

    def cluster(self, destination: Destination, namespace: str = DEFAULT_NAMESPACE) -> Cluster:
        host = hostnames.qualify(destination.host, namespace)
        if not host:
            # Envoy refuses a route to a cluster without a name (it NACKs the push): a proxy
            # cannot build this, whatever let it through.
            raise ConfigError(
                [Issue("Error", SCHEMA_VALIDATION_ERROR, "destination host is required")]
            )
        service = self.services.get(host)
        if destination.port is not None and destination.port.number:
            port = destination.port.number
        elif service is not None and service.ports:
            port = service.ports[0].number
        else:
            port = DEFAULT_SERVICE_PORT
        subset_name = destination.subset or None
        name = f"outbound|{port}|{subset_name or ''}|{host}"
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
        built = Cluster(name, host, subset_name, port, tuple(endpoints), policy, defined, rule)
        self.clusters[name] = built
        return built
