"""``analyze(resources, topology)``: every semantic and cross-reference problem, Istio-style.

Two layers, as in Istio: the webhook's per-resource checks (one module per kind:
``virtual_service``, ``destination_rule``, ``gateway``; shared value checks in ``values``),
dispatched by ``RESOURCE_CHECKS``, and the analyzers' cross-resource checks here
(``IST0101`` missing host/subset/gateway, ``IST0109`` two mesh VirtualServices for a host,
``IST0112`` a multi-port destination without a port, ``IST0132`` host not in gateway,
``IST0145`` conflicting gateways, ``IST0173`` subset that selects no pods, ``IST0174``
DestinationRule for an unknown host), plus the lab's own notes (``MSH0008``: where the lab
deliberately differs, README "Lab decisions").

Hosts are the topology's Services and the hosts of the ServiceEntries among the resources.
A resource annotated ``meshlab.io/allow-dangling: "true"`` (``meshctl apply
--allow-dangling``) gets its dangling references (IST0101: a subset, host or gateway that is
not defined) as warnings: it is applied, and requests fail as in Istio (503 NC, 404 NR).

Known hosts, pods and gateway pods come from the ``Topology`` passed in: the lab's, with the
live registry's pods when a mesh runs, so ``reviews`` is a known host and IST0173 works
without a running mesh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from mesh.config import hosts as hostnames
from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import (
    Destination,
    DestinationRule,
    Gateway,
    ServiceEntry,
    TCPRoute,
    TLSRoute,
    VirtualService,
)
from mesh.config.resource import Resource
from mesh.config.validate.authorization_policy import (
    check_authorization_policy,
    check_dry_run_annotation,
)
from mesh.config.validate.destination_rule import check_destination_rule
from mesh.config.validate.gateway import check_gateway
from mesh.config.validate.peer_authentication import check_peer_authentication
from mesh.config.validate.service_entry import check_service_entry
from mesh.config.validate.virtual_service import check_virtual_service
from mesh.topology import ROOT_NAMESPACE, Pod, Topology

# The per-resource checks of each kind (Istio's validation webhook): one entry per kind.
RESOURCE_CHECKS: dict[str, Callable[[Resource, list[Issue]], None]] = {
    "VirtualService": check_virtual_service,
    "DestinationRule": check_destination_rule,
    "Gateway": check_gateway,
    "PeerAuthentication": check_peer_authentication,
    "AuthorizationPolicy": check_authorization_policy,
    "ServiceEntry": check_service_entry,
}


ALLOW_DANGLING = "meshlab.io/allow-dangling"


def allows_dangling(resource: Resource) -> bool:
    metadata = resource.raw.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return (
        isinstance(annotations, Mapping) and str(annotations.get(ALLOW_DANGLING)).lower() == "true"
    )


def dangling(resource: Resource, path: str, message: str) -> Issue:
    """IST0101 for a reference that does not resolve: an error, or a warning when the
    resource allows it (Istio's behaviour: applied, and requests fail)."""
    if allows_dangling(resource):
        return resource.issue(
            "Warning",
            codes.REFERENCED_RESOURCE_NOT_FOUND,
            path,
            f"{message} [applied anyway: {ALLOW_DANGLING}]",
        )
    if resource.namespace == ROOT_NAMESPACE:
        # The config root namespace holds config for add-ons the lab does not run (Istio's
        # certmanager-gateway.yaml names cert-manager's resolver): such files apply as written.
        return resource.issue(
            "Warning",
            codes.REFERENCED_RESOURCE_NOT_FOUND,
            path,
            f"{message} [applied anyway: {ROOT_NAMESPACE} may name add-ons the lab does not run]",
        )
    return resource.issue("Error", codes.REFERENCED_RESOURCE_NOT_FOUND, path, message)


def service_entry_hosts(resources: Sequence[Resource]) -> dict[str, Resource]:
    """Normalised host → the ServiceEntry that declares it."""
    hosts: dict[str, Resource] = {}
    for resource in resources:
        if resource.kind == "ServiceEntry":
            for host in resource.spec.hosts:
                hosts.setdefault(hostnames.qualify(host, resource.namespace), resource)
    return hosts


def analyze(resources: Sequence[Resource], topology: Topology) -> list[Issue]:
    """Every finding for these resources, given the Services and pods that exist."""
    services = set(topology.service_fqdns)
    pods = topology.app_pods
    gateway_pods = [p.labels for p in topology.gateway_pods]
    out: list[Issue] = []
    seen: dict[tuple[str, str, str], Resource] = {}
    for resource in resources:
        key = resource.key
        if key in seen:
            first = seen[key]
            out.append(
                resource.issue(
                    "Error",
                    codes.SCHEMA_VALIDATION_ERROR,
                    "",
                    f"{resource.kind} {resource.display_name} is defined twice (first in {first.source.file}:{first.source.line})",
                )
            )
            continue
        seen[key] = resource
        check = RESOURCE_CHECKS.get(resource.kind)
        if check is not None:
            check(resource, out)
        check_dry_run_annotation(resource, out)
    unique = list(seen.values())
    entries = service_entry_hosts(unique)
    ports = {s.fqdn: tuple(p.number for p in s.ports) for s in topology.services}
    for host, entry in entries.items():
        ports.setdefault(host, tuple(p.number for p in entry.spec.ports if p.number))
    rules = [r for r in unique if r.kind == "DestinationRule"]
    gateways = {f"{r.namespace}/{r.name}": r for r in unique if r.kind == "Gateway"}
    subsets: dict[str, dict[str, Mapping[str, str]]] = {}
    for rule in rules:
        host = hostnames.qualify(rule.spec.host, rule.namespace)
        for subset in rule.spec.subsets:
            subsets.setdefault(host, {})[subset.name] = subset.labels
    _check_destination_refs(unique, services, entries, ports, subsets, out)
    _check_gateway_bindings(unique, gateways, out)
    _check_mesh_conflicts(unique, out)
    _check_subsets_select_pods(rules, pods, services, entries, out)
    _check_gateway_selectors(gateways.values(), gateway_pods, out)
    _check_service_entries(entries, services, out)
    return out


def _known_host(host: str, services: set[str], entries: Mapping[str, Resource]) -> bool:
    if host in services or host in entries:
        return True
    return any(
        pattern.startswith("*") and hostnames.host_matches(pattern, host) for pattern in entries
    )


def _check_destination_refs(
    resources: Sequence[Resource],
    services: set[str],
    entries: Mapping[str, Resource],
    ports: Mapping[str, tuple[int, ...]],
    subsets: Mapping[str, Mapping[str, Mapping[str, str]]],
    out: list[Issue],
) -> None:
    for resource in resources:
        if resource.kind != "VirtualService":
            continue
        spec: VirtualService = resource.spec
        for i, route in enumerate(spec.http):
            refs: list[tuple[str, Destination]] = [
                (f"http[{i}].route[{k}].destination", d.destination)
                for k, d in enumerate(route.route)
                if d.destination is not None
            ]
            if route.mirror is not None:
                refs.append((f"http[{i}].mirror", route.mirror))
            refs += [
                (f"http[{i}].mirrors[{k}].destination", m.destination)
                for k, m in enumerate(route.mirrors)
                if m.destination is not None
            ]
            _check_refs(resource, refs, services, entries, ports, subsets, out)
        l4_routes: list[tuple[str, TCPRoute | TLSRoute]] = [
            *((f"tcp[{i}]", r) for i, r in enumerate(spec.tcp)),
            *((f"tls[{i}]", r) for i, r in enumerate(spec.tls)),
        ]
        for l4_path, l4 in l4_routes:
            l4_refs = [
                (f"{l4_path}.route[{k}].destination", d.destination)
                for k, d in enumerate(l4.route)
                if d.destination is not None
            ]
            _check_refs(resource, l4_refs, services, entries, ports, subsets, out)


def _check_refs(
    resource: Resource,
    refs: Sequence[tuple[str, Destination]],
    services: set[str],
    entries: Mapping[str, Resource],
    ports: Mapping[str, tuple[int, ...]],
    subsets: Mapping[str, Mapping[str, Mapping[str, str]]],
    out: list[Issue],
) -> None:
    for path, destination in refs:
        if not destination.host:
            continue
        host = hostnames.qualify(destination.host, resource.namespace)
        if not _known_host(host, services, entries):
            known = ", ".join(
                sorted(hostnames.display(h, resource.namespace) for h in {*services, *entries})
            )
            out.append(
                dangling(
                    resource,
                    f"{path}.host",
                    f"host {destination.host!r} is not a known service or ServiceEntry "
                    f"host in namespace {resource.namespace} (known: {known})"
                    f"{_short_name_hint(destination.host, services)}; Istio would route it to "
                    "a cluster that does not exist: 503 NC",
                )
            )
            continue
        _check_port_selector(resource, path, host, destination, ports, out)
        if destination.subset and destination.subset not in subsets.get(host, {}):
            defined = sorted(subsets.get(host, {}))
            hint = (
                f"defined subsets: {', '.join(defined)}"
                if defined
                else "no DestinationRule defines subsets for it"
            )
            out.append(
                dangling(
                    resource,
                    f"{path}.subset",
                    f'subset "{destination.subset}" is not defined for host '
                    f"{hostnames.display(host, resource.namespace)} "
                    f"({hint}). Apply the DestinationRule first, or in the same apply "
                    "(meshctl apply -f dr.yaml -f vs.yaml); Istio would accept this and "
                    "answer 503 NC (meshctl apply --allow-dangling shows that)",
                )
            )


def _check_port_selector(
    resource: Resource,
    path: str,
    host: str,
    destination: Destination,
    ports: Mapping[str, tuple[int, ...]],
    out: list[Issue],
) -> None:
    """Istio's destinationhosts analyzer: IST0112 when the port is ambiguous, IST0101 when
    the port is not the service's."""
    known = ports.get(host, ())
    number = destination.port.number if destination.port is not None else None
    if number is None:
        if len(known) > 1:
            out.append(
                resource.issue(
                    "Error",
                    codes.PORT_SELECTOR_REQUIRED,
                    f"{path}.port",
                    f"This VirtualService routes to a service {host!r} that exposes multiple "
                    f"ports {list(known)}. Specifying a port in the destination is required to "
                    "disambiguate.",
                )
            )
    elif known and number not in known:
        out.append(
            dangling(
                resource,
                f"{path}.port",
                f"port {number} is not a port of {host} (its ports: {list(known)})",
            )
        )


def _check_gateway_bindings(
    resources: Sequence[Resource], gateways: Mapping[str, Resource], out: list[Issue]
) -> None:
    for resource in resources:
        if resource.kind != "VirtualService":
            continue
        spec: VirtualService = resource.spec
        bound = list(spec.gateways)
        for route in spec.http:
            for match in route.match:
                bound += [g for g in match.gateways if g not in bound]
        for i, name in enumerate(bound):
            key = hostnames.gateway_ref(name, resource.namespace)
            if key == "mesh":
                continue
            path = f"gateways[{i}]" if i < len(spec.gateways) else "http"
            gateway = gateways.get(key)
            if gateway is None:
                out.append(
                    dangling(
                        resource,
                        path,
                        f'gateway "{name}" is not defined'
                        + (f" (defined: {', '.join(sorted(gateways))})" if gateways else ""),
                    )
                )
                continue
            # A server host "ns/host" binds only that namespace's VirtualServices.
            server_hosts = [
                host
                for server in gateway.spec.servers
                for allowed, host in (
                    hostnames.server_host(h, gateway.namespace) for h in server.hosts
                )
                if allowed in ("*", resource.namespace)
            ]
            overlaps = any(
                hostnames.intersect(hostnames.qualify(vs_host, resource.namespace), server_host)
                is not None
                for vs_host in spec.hosts
                for server_host in server_hosts
            )
            if not overlaps:
                out.append(
                    resource.issue(
                        "Warning",
                        codes.HOST_NOT_FOUND_IN_GATEWAY,
                        "hosts",
                        f"none of the hosts {list(spec.hosts)} is served by gateway {key} "
                        f"(its hosts: {server_hosts}): this VirtualService gets no traffic from it",
                    )
                )


def _check_mesh_conflicts(resources: Sequence[Resource], out: list[Issue]) -> None:
    owners: dict[str, Resource] = {}
    for resource in resources:
        if resource.kind != "VirtualService":
            continue
        spec: VirtualService = resource.spec
        bound = [hostnames.gateway_ref(g, resource.namespace) for g in spec.gateways] or ["mesh"]
        if "mesh" not in bound:
            continue
        for i, host in enumerate(spec.hosts):
            name = hostnames.qualify(host, resource.namespace)
            other = owners.get(name)
            if other is not None and other is not resource:
                out.append(
                    resource.issue(
                        "Error",
                        codes.CONFLICTING_MESH_GATEWAY_VS_HOSTS,
                        f"hosts[{i}]",
                        f"host {hostnames.display(name)} is also routed by VirtualService "
                        f"{other.display_name} "
                        f"({other.source.file}:{other.source.line}); mesh VirtualServices for one "
                        "host are not merged: keep one",
                    )
                )
            else:
                owners[name] = resource


def _check_subsets_select_pods(
    rules: Sequence[Resource],
    pods: Sequence[Pod],
    services: set[str],
    entries: Mapping[str, Resource],
    out: list[Issue],
) -> None:
    hosts_seen: dict[str, Resource] = {}
    for resource in rules:
        spec: DestinationRule = resource.spec
        host = hostnames.qualify(spec.host, resource.namespace)
        if host.startswith("*"):
            continue
        if host in hosts_seen and hosts_seen[host].namespace == resource.namespace:
            out.append(
                resource.issue(
                    "Warning",
                    codes.SCHEMA_WARNING,
                    "host",
                    f"DestinationRule {hosts_seen[host].name} also configures host {host}: the lab uses the first",
                )
            )
        hosts_seen.setdefault(host, resource)
        if host not in services:
            if not _known_host(host, services, entries):
                out.append(
                    resource.issue(
                        "Warning",
                        codes.UNKNOWN_DR_HOST,
                        "host",
                        f"host {spec.host!r} is not a known service or ServiceEntry host: this "
                        "DestinationRule has no effect",
                    )
                )
            continue
        service_pods = [p for p in pods if hostnames.service_fqdn(p.service, p.namespace) == host]
        for i, subset in enumerate(spec.subsets):
            if not subset.name:
                continue
            if not any(
                all(p.labels.get(k) == v for k, v in subset.labels.items()) for p in service_pods
            ):
                out.append(
                    resource.issue(
                        "Warning",
                        codes.SUBSET_SELECTS_NO_PODS,
                        f"subsets[{i}]",
                        f'subset "{subset.name}" (labels {dict(subset.labels)}) selects no pods of '
                        f"{hostnames.display(host, resource.namespace)}: requests routed to it get 503 no healthy upstream (UH). Istio "
                        "reports this as an error; the lab warns (Lab decision 10): a rollout "
                        "starts with a subset whose pods are not deployed yet",
                    )
                )


def _check_gateway_selectors(
    gateways: Iterable[Resource], gateway_pods: Sequence[Mapping[str, str]], out: list[Issue]
) -> None:
    claimed: dict[tuple[tuple[tuple[str, str], ...], int, str], Resource] = {}
    for resource in gateways:
        spec: Gateway = resource.spec
        selector = dict(spec.selector)
        if selector and not any(
            all(p.get(k) == v for k, v in selector.items()) for p in gateway_pods
        ):
            out.append(
                resource.issue(
                    "Error",
                    codes.REFERENCED_RESOURCE_NOT_FOUND,
                    "selector",
                    f"selector {selector} matches no gateway pod (the lab's gateway has labels "
                    f"{dict(gateway_pods[0]) if gateway_pods else {}})",
                )
            )
        key_selector = tuple(sorted(selector.items()))
        for i, server in enumerate(spec.servers):
            if server.port is None or server.port.number is None:
                continue
            for host in server.hosts:
                key = (key_selector, server.port.number, host)
                other = claimed.get(key)
                if other is not None and other is not resource:
                    out.append(
                        resource.issue(
                            "Error",
                            codes.CONFLICTING_GATEWAYS,
                            f"servers[{i}]",
                            f"Gateway {other.name} already serves host {host} on port "
                            f"{server.port.number} for the same selector",
                        )
                    )
                else:
                    claimed[key] = resource


def _check_service_entries(
    entries: Mapping[str, Resource], services: set[str], out: list[Issue]
) -> None:
    """What a ServiceEntry host resolves to in the lab (Lab decision 11)."""
    reported: set[int] = set()
    for host, resource in entries.items():
        if id(resource) in reported:
            continue
        reported.add(id(resource))
        spec: ServiceEntry = resource.spec
        if host in services:
            continue  # a ServiceEntry naming a lab Service adds nothing to resolve
        if spec.endpoints:
            addresses = ", ".join(e.address or "?" for e in spec.endpoints)
            out.append(
                resource.issue(
                    "Info",
                    codes.LAB_DECISION,
                    "endpoints",
                    f"requests for {', '.join(spec.hosts)} go to {addresses} (Lab decision 11)",
                )
            )
        else:
            out.append(
                resource.issue(
                    "Info",
                    codes.LAB_DECISION,
                    "hosts",
                    f"the lab has no outside network: requests for {', '.join(spec.hosts)} get "
                    "503 no healthy upstream (UH), as Envoy answers when a name resolves to no "
                    "address; give endpoints (a lab container or process) to reach one "
                    "(Lab decision 11)",
                )
            )


def _short_name_hint(written: str, services: set[str]) -> str:
    """Istio expands only names without a dot: ``reviews.default`` names no Service."""
    name = hostnames.bare(written)
    candidate = f"{name}.svc.cluster.local" if name.count(".") == 1 else ""
    if name.endswith(".svc"):
        candidate = f"{name}.cluster.local"
    if candidate in services:
        return f"; Istio expands only short names: write {candidate} (or the short name in its namespace)"
    return ""
