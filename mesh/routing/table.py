"""Compiling config into a proxy's route table: ``compile_config`` / ``compile_snapshot``.

The table's shapes (``ProxyIdentity``, ``CompiledRule``, ``VirtualHost``, ``RouteConfig``,
``RouteTable``) are in ``mesh.routing.routes``.

``compile_snapshot`` is what a proxy runs on each published snapshot: no YAML, no
validation, no topology of its own. Which rules a proxy gets is decided here, as Istio's
route.go does: a sidecar gets the
VirtualServices bound to ``mesh`` (the default), a gateway gets those naming one of the
Gateways that select it, with hosts narrowed to the Gateway server's (``intersect``);
match-level ``gateways`` and ``sourceLabels`` filter match entries per proxy. A service with
no VirtualService gets a default route to all its endpoints. Compiling happens once per
snapshot; ``decide`` then touches no YAML and compiles no regex.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence

from mesh.config import hosts as hostnames
from mesh.config.delegation import merge_delegates
from mesh.config.issues import SCHEMA_VALIDATION_ERROR, ConfigError, Issue
from mesh.config.model import (
    Destination,
    Gateway,
    HeaderOperations,
    Headers,
    HTTPRedirect,
    HTTPRoute,
    ServiceEntry,
    VirtualService,
    share,
)
from mesh.config.normal_form import NormalFormError, from_normal
from mesh.config.resource import Resource
from mesh.resilience.retry import RetryPolicy
from mesh.routing.decision import NO_HEADER_OPS, Cluster, HeaderOps
from mesh.routing.destinations import ClusterBuilder, labels_match
from mesh.routing.match import HeaderRegexSets, RequestMatcher, compile_match, compile_regex
from mesh.routing.routes import (
    MESH_GATEWAY,
    CompiledRule,
    ProxyIdentity,
    RouteConfig,
    RouteTable,
    RouteTarget,
    VirtualHost,
    WeightedPicker,
)
from mesh.snapshot import Endpoint, Snapshot
from mesh.topology import DEFAULT_NAMESPACE, Service

# ---------------------------------------------------------------- helpers


def header_ops(operations: HeaderOperations | None) -> HeaderOps:
    if operations is None:
        return NO_HEADER_OPS
    return HeaderOps(
        set=tuple((k.lower(), v) for k, v in operations.set.items()),
        add=tuple((k.lower(), v) for k, v in operations.add.items()),
        remove=tuple(k.lower() for k in operations.remove),
    )


def _headers(headers: Headers | None) -> tuple[HeaderOps, HeaderOps]:
    if headers is None:
        return NO_HEADER_OPS, NO_HEADER_OPS
    return header_ops(headers.request), header_ops(headers.response)


def _compile_rule(
    vs_name: str,
    index: int,
    route: HTTPRoute,
    matchers: tuple[RequestMatcher, ...],
    clusters: ClusterBuilder,
    namespace: str = DEFAULT_NAMESPACE,
) -> CompiledRule:
    request_ops, response_ops = _headers(route.headers)
    compiled = CompiledRule(
        virtual_service=vs_name,
        index=index,
        name=route.name,
        matchers=matchers,
        route=route,
        retry=RetryPolicy.from_config(route.retries),
        request_headers=request_ops,
        response_headers=response_ops,
    )
    if route.route:
        targets = []
        weights = []
        for destination in route.route:
            if destination.destination is None:
                continue
            dest_request, dest_response = _headers(destination.headers)
            targets.append(
                RouteTarget(
                    clusters.cluster(destination.destination, namespace),
                    request_ops.then(dest_request),
                    response_ops.then(dest_response),
                )
            )
            weights.append(destination.weight or 0)
        if len(targets) == 1 or sum(weights) <= 0:
            weights = [1] * len(targets) if len(targets) == 1 else [1 if w else 0 for w in weights]
        # Zero-weight destinations get no traffic (route.go skips them).
        kept = [(t, w) for t, w in zip(targets, weights, strict=True) if w > 0]
        compiled.targets = tuple(t for t, _ in kept)
        compiled.picker = WeightedPicker([w for _, w in kept]) if len(kept) > 1 else None
    mirrors: list[tuple[Cluster, float]] = []
    if route.mirror is not None:
        # A mirror without a percentage copies every request (unlike a fault).
        fraction = share(route.mirror_percentage, route.mirror_percent, default=1.0)
        mirrors.append((clusters.cluster(route.mirror, namespace), fraction))
    for policy in route.mirrors:
        if policy.destination is not None:
            fraction = share(policy.percentage, default=1.0)
            mirrors.append((clusters.cluster(policy.destination, namespace), fraction))
    compiled.mirrors = tuple(m for m in mirrors if m[1] > 0)
    if route.rewrite is not None and route.rewrite.uri_regex_rewrite is not None:
        compiled.uri_regex = compile_regex(route.rewrite.uri_regex_rewrite.match)
    if route.direct_response is not None and route.direct_response.body is not None:
        body = route.direct_response.body
        if body.string is not None:
            compiled.direct_body = body.string.encode()
        elif body.bytes is not None:
            compiled.direct_body = base64.b64decode(body.bytes)
    return compiled


def _rule_matchers(
    route: HTTPRoute,
    proxy: ProxyIdentity,
    bound_gateways: Sequence[str],
    gateway: str | None,
    regex_sets: HeaderRegexSets,
    namespace: str = DEFAULT_NAMESPACE,
) -> tuple[RequestMatcher, ...] | None:
    """Matchers of a rule for this proxy; None when no match entry applies to it."""
    if not route.match:
        applies = (MESH_GATEWAY if gateway is None else gateway) in bound_gateways
        return () if applies else None
    kept = []
    for entry in route.match:
        entry_gateways = [hostnames.gateway_ref(g, namespace) for g in entry.gateways] or list(
            bound_gateways
        )
        if gateway is None and MESH_GATEWAY not in entry_gateways:
            continue
        if gateway is not None and gateway not in entry_gateways:
            continue
        if entry.source_labels and not labels_match(entry.source_labels, proxy.labels):
            continue
        if entry.source_namespace and entry.source_namespace != proxy.namespace:
            continue
        kept.append(compile_match(entry, regex_sets))
    return tuple(kept) if kept else None


def _sort_catch_alls_last(rules: list[CompiledRule]) -> list[CompiledRule]:
    # Merged gateway VirtualServices: catch-all routes move last (route.go SortVHostRoutes).
    return [r for r in rules if r.matchers] + [r for r in rules if not r.matchers]


def _visible_virtual_services(resources: Sequence[Resource], namespace: str) -> list[Resource]:
    """The VirtualServices a proxy in ``namespace`` sees, in Istio's order: its namespace's
    private ones, then those exported to it by name, then the public ones (config order
    within each: on a host claimed twice, the first wins)."""
    private: list[Resource] = []
    exported: list[Resource] = []
    public: list[Resource] = []
    for resource in resources:
        export_to = tuple(resource.spec.export_to)
        if not export_to or "*" in export_to:
            public.append(resource)
        elif "~" in export_to:
            continue
        elif resource.namespace == namespace and ("." in export_to or namespace in export_to):
            private.append(resource)
        elif namespace in export_to:
            exported.append(resource)
    return [*private, *exported, *public]


def gateway_port_map(proxy: ProxyIdentity, services: Iterable[Service]) -> dict[int, int]:
    """Gateway server port → the port the gateway listens on: the target port of the Service
    port of that number on a Service selecting this gateway (Istio's legacy selector
    translation: ``port: 80`` listens on 8080), else the number itself."""
    mapping: dict[int, int] = {}
    for service in services:
        if service.namespace != proxy.namespace or service.selector is None:
            continue
        if not service.selector or not labels_match(service.selector, proxy.labels):
            continue
        for port in service.ports:
            if port.target_port is not None:
                mapping.setdefault(port.number, port.target_port)
    return mapping


def compile_config(
    resources: Sequence[Resource],
    endpoints: Sequence[Endpoint],
    proxy: ProxyIdentity,
    version: int = 0,
    services: Iterable[Service] = (),
) -> RouteTable:
    """Build the route table of one proxy from validated resources, ready endpoints and the
    service catalog (a Service with no ready endpoint still gets its default route: 503 UH,
    not 404 NR). Names resolve as in Kubernetes: config hosts in the resource's namespace,
    request hosts in the proxy's (``mesh.config.hosts``)."""
    resources = merge_delegates(resources)  # root rules with delegate: the delegate's rules
    catalog = [s for s in services if s.visible_from(proxy.namespace)]
    virtual_services = _visible_virtual_services(
        [r for r in resources if r.kind == "VirtualService"], proxy.namespace
    )
    destination_rules = [r for r in resources if r.kind == "DestinationRule"]
    gateways = {f"{r.namespace}/{r.name}": r for r in resources if r.kind == "Gateway"}
    entries = [r for r in resources if r.kind == "ServiceEntry"]
    entry_endpoints = service_entry_endpoints(entries)
    clusters = ClusterBuilder(
        destination_rules, [*endpoints, *entry_endpoints], catalog, proxy.namespace
    )
    regex_sets = HeaderRegexSets()

    mesh = RouteConfig()
    if not proxy.gateway:
        claimed: set[str] = set()
        for resource in virtual_services:
            spec: VirtualService = resource.spec
            ns = resource.namespace
            bound = [hostnames.gateway_ref(g, ns) for g in spec.gateways] or [MESH_GATEWAY]
            rules = []
            for index, route in enumerate(spec.http):
                matchers = _rule_matchers(route, proxy, bound, None, regex_sets, ns)
                if matchers is None:
                    continue
                rules.append(_compile_rule(resource.name, index, route, matchers, clusters, ns))
            if MESH_GATEWAY not in bound and not rules:
                continue
            hosts = [hostnames.qualify(h, ns) for h in spec.hosts]
            # Several mesh VirtualServices for one host are not merged (IST0109): the first
            # one in Istio's order wins, deterministically.
            hosts = [h for h in hosts if h not in claimed]
            if not hosts:
                continue
            claimed.update(hosts)
            names = tuple(a for h in hosts for a in hostnames.aliases(h, proxy.namespace))
            vhost = VirtualHost(names, rules)
            for name in names:
                if name not in mesh.exact:
                    mesh.add(name, vhost)
        known = {s.fqdn for s in catalog}
        known |= {e.fqdn for e in endpoints}
        # A ServiceEntry host resolves like a Service: its endpoints, or none (503 UH).
        known |= {hostnames.qualify(h, r.namespace) for r in entries for h in r.spec.hosts}
        for service in sorted(known):
            if (
                service.startswith("*")
                or service in claimed
                or any(h.startswith("*") and hostnames.host_matches(h, service) for h in claimed)
            ):
                continue
            default = HTTPRoute(route=())
            rule = CompiledRule("", 0, "default", (), default)
            target_cluster = clusters.cluster(Destination(host=service))
            rule.targets = (RouteTarget(target_cluster, NO_HEADER_OPS, NO_HEADER_OPS),)
            names = hostnames.aliases(service, proxy.namespace)
            vhost = VirtualHost(names, [rule])
            for name in names:
                if name not in mesh.exact:
                    mesh.add(name, vhost)

    gateway_routes: dict[int, RouteConfig] = {}
    if proxy.gateway:
        port_map = gateway_port_map(proxy, services)
        visible = _visible_virtual_services(
            [r for r in resources if r.kind == "VirtualService"], proxy.namespace
        )
        for gateway_name, gateway_resource in sorted(gateways.items()):
            gateway_spec: Gateway = gateway_resource.spec
            if not _selects(gateway_spec, proxy):
                continue
            for server in gateway_spec.servers:
                if server.port is None or server.port.number is None:
                    continue
                listen = port_map.get(server.port.number, server.port.number)
                listener = gateway_routes.setdefault(listen, RouteConfig())
                server_hosts = [
                    hostnames.server_host(h, gateway_resource.namespace) for h in server.hosts
                ]
                if server.tls is not None and server.tls.https_redirect:
                    # tls.httpsRedirect: Envoy's require_tls — every request gets a 301 to
                    # https, whatever the VirtualServices say.
                    for _ns, name in server_hosts:
                        listener.add(name, VirtualHost((name,), [HTTPS_REDIRECT_RULE]))
                    continue
                merged: dict[str, list[CompiledRule]] = {}
                for resource in visible:
                    spec = resource.spec
                    ns = resource.namespace
                    bound = [hostnames.gateway_ref(g, ns) for g in spec.gateways]
                    if gateway_name not in bound:
                        continue
                    narrowed_hosts: set[str] = set()
                    for vs_host in spec.hosts:
                        qualified = hostnames.qualify(vs_host, ns)
                        for allowed, server_host in server_hosts:
                            if allowed not in ("*", ns):
                                continue  # ns/host: only that namespace's VirtualServices bind
                            narrowed = hostnames.intersect(qualified, server_host)
                            if narrowed is not None:
                                narrowed_hosts.add(narrowed)
                    if not narrowed_hosts:
                        continue  # IST0132: no overlap with this server
                    rules = []
                    for index, route in enumerate(spec.http):
                        matchers = _rule_matchers(route, proxy, bound, gateway_name, regex_sets, ns)
                        if matchers is None:
                            continue
                        rules.append(
                            _compile_rule(resource.name, index, route, matchers, clusters, ns)
                        )
                    for name in sorted(narrowed_hosts):
                        merged.setdefault(name, []).extend(rules)
                for name, rules in merged.items():
                    existing = (
                        listener.lookup(name) if name in listener.exact or name == "*" else None
                    )
                    if existing is not None and name in existing.names:
                        existing.set_rules(_sort_catch_alls_last(existing.rules + rules))
                    else:
                        listener.add(name, VirtualHost((name,), _sort_catch_alls_last(rules)))
    regex_sets.build()
    return RouteTable(
        version=version,
        proxy=proxy,
        mesh=mesh,
        gateway_routes=gateway_routes,
        clusters=clusters.clusters,
        resources=tuple(resources),
    )


def service_entry_endpoints(entries: Sequence[Resource]) -> list[Endpoint]:
    """The endpoints a ServiceEntry gives its hosts (Lab decision 11): each ``endpoints[]``
    address (a lab container or process) on the port its ``ports`` map names for the entry's
    first port, else that port's targetPort or number. An entry without endpoints gives none:
    its hosts get Envoy's 503 no healthy upstream (the lab has no outside network)."""
    found: list[Endpoint] = []
    for resource in entries:
        spec: ServiceEntry = resource.spec
        port = spec.ports[0] if spec.ports else None
        for i, entry in enumerate(spec.endpoints):
            if not entry.address or entry.address.startswith("unix://"):
                continue
            number = entry.ports.get(port.name or "") if port is not None else None
            number = number or (port.target_port or port.number if port is not None else None)
            if not number:
                continue
            for host in spec.hosts:
                found.append(
                    Endpoint(
                        f"{resource.name}-{i}",
                        hostnames.qualify(host, resource.namespace),
                        entry.address,
                        number,
                        dict(entry.labels),
                    )
                )
    return found


HTTPS_REDIRECT_RULE = CompiledRule(
    virtual_service="",
    index=0,
    name="https-redirect",
    matchers=(),
    route=HTTPRoute(redirect=HTTPRedirect(scheme="https", redirect_code=301)),
)


def _selects(gateway: Gateway, proxy: ProxyIdentity) -> bool:
    # A nil selector selects every workload; the lab's sidecars never serve Gateways.
    return labels_match(gateway.selector, proxy.labels)


def compile_snapshot(snapshot: Snapshot, proxy: ProxyIdentity) -> RouteTable:
    """Build one proxy's table from a published snapshot alone: its resources in normal form
    (the manager parsed and validated them), its endpoints and its service catalog.

    Raises ``ConfigError`` when a resource is not in normal form or cannot be compiled (the
    caller keeps its last good table).
    """
    try:
        resources = [from_normal(doc, i) for i, doc in enumerate(snapshot.resources)]
    except NormalFormError as exc:
        raise ConfigError([Issue("Error", SCHEMA_VALIDATION_ERROR, str(exc))]) from None
    return compile_config(
        resources, snapshot.endpoints, proxy, snapshot.version, services=snapshot.services
    )
