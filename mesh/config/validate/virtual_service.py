"""VirtualService: Istio's webhook rules for the resource as a whole (``ValidateVirtualService``
in validation.go and virtualservice.go; ``IST0106`` errors, ``IST0133`` warnings): hosts,
gateway names, delegation, TCP and TLS routes, ``exportTo``.

``check_virtual_service`` is the entry: it checks each HTTP route with
``mesh.config.validate.http_route`` and the rule order (``IST0130``/``IST0131``) with
``mesh.config.validate.rule_order``, so a rule for a field goes into the function of the
message that holds the field. Notes on what the lab does differently are Info lines
(``MSH0008``).
"""

from __future__ import annotations

import re

from mesh.config.issues import Issue
from mesh.config.model import (
    L4MatchAttributes,
    TLSMatchAttributes,
    TLSRoute,
    VirtualService,
)
from mesh.config.resource import Resource
from mesh.config.validate.http_route import check_http_route, check_route_destinations
from mesh.config.validate.rule_order import check_reachability
from mesh.config.validate.values import (
    JWT_CLAIM_PREFIX,
    Findings,
    check_export_to,
    check_gateway_name,
    check_labels,
    check_port,
    is_ip,
    is_ip_subnet,
    wildcard_domain_problem,
)

MESH = "mesh"


def check_virtual_service(resource: Resource, out: list[Issue]) -> None:
    spec: VirtualService = resource.spec
    found = Findings(resource, out)
    delegate = not spec.hosts
    if delegate:
        if spec.gateways:
            found.error("gateways", "delegate virtual service must have no gateways specified")
        if spec.tls:
            found.error("tls", "delegate virtual service must have no tls route specified")
        if spec.tcp:
            found.error("tcp", "delegate virtual service must have no tcp route specified")
    applies_to_gateway = bool(spec.gateways) and MESH not in spec.gateways
    applies_to_mesh = not applies_to_gateway
    for i, name in enumerate(spec.gateways):
        check_gateway_name(found, f"gateways[{i}]", name)
    if not applies_to_gateway:
        for i, route in enumerate(spec.http):
            for j, match in enumerate(route.match):
                for field_name, headers in (
                    ("headers", match.headers),
                    ("withoutHeaders", match.without_headers),
                ):
                    for key in headers:
                        if key.startswith(f"{JWT_CLAIM_PREFIX}."):
                            found.error(
                                f"http[{i}].match[{j}].{field_name}.{key}",
                                f"JWT claim based routing (key: {key}) is only supported for "
                                "gateway, found no gateways",
                            )
    sni = any(m.sni_hosts for route in spec.tls for m in route.match)
    all_hosts_valid = True
    for i, host in enumerate(spec.hosts):
        problem = (
            gateway_host_problem(sni, host) if applies_to_gateway else wildcard_domain_problem(host)
        )
        if problem:
            if not is_ip(host):
                found.error(f"hosts[{i}]", problem)
                all_hosts_valid = False
        elif applies_to_mesh and host == "*":
            found.error(
                f"hosts[{i}]",
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
            all_hosts_valid = False
    if all_hosts_valid:
        for i, first in enumerate(spec.hosts):
            for second in spec.hosts[i + 1 :]:
                if hosts_overlap(first, second):
                    found.error(
                        f"hosts[{i}]", f"duplicate hosts in virtual service: {first} & {second}"
                    )
    if not spec.http and not spec.tcp and not spec.tls:
        found.error("", "http, tcp or tls must be provided in virtual service")
    for i, route in enumerate(spec.http):
        check_http_route(found, f"http[{i}]", route, delegate)
    for i, tls_route in enumerate(spec.tls):
        check_tls_route(found, f"tls[{i}]", tls_route, spec, applies_to_gateway)
    for i, tcp_route in enumerate(spec.tcp):
        path = f"tcp[{i}]"
        for j, l4 in enumerate(tcp_route.match):
            check_l4_match(found, f"{path}.match[{j}]", l4)
        if not tcp_route.route:
            found.error(f"{path}.route", "TCP route is required")
        check_route_destinations(found, f"{path}.route", tcp_route.route)
    check_export_to(found, "exportTo", resource.namespace, spec.export_to)
    check_reachability(found, spec)
    if spec.tcp or spec.tls:
        found.lab(
            "tcp" if spec.tcp else "tls",
            "tcp and tls routes are validated but not served by the lab (Lab decision 7)",
        )


# ---------------------------------------------------------------- hosts and gateway names


def hosts_overlap(first: str, second: str) -> bool:
    """Istio's host.Name.Matches: equal names, or wildcards whose suffixes overlap."""
    first_wild, second_wild = first.startswith("*"), second.startswith("*")
    if first_wild and second_wild:
        if len(first) < len(second):
            return second[1:].endswith(first[1:])
        return first[1:].endswith(second[1:])
    if first_wild:
        return second.endswith(first[1:])
    if second_wild:
        return first.endswith(second[1:])
    return first == second


def gateway_host_problem(sni: bool, host: str) -> str | None:
    """Istio's ValidateWildcardDomainForVirtualServiceBoundToGateway: with SNI routes, the
    ``outbound_.<port>_._.<host>`` names AUTO_PASSTHROUGH gateways generate are allowed."""
    if sni and host.startswith("outbound_"):
        parts = host.split("_")
        if len(parts) < 4:
            return (
                f"domain name {host} invalid, should follow 'outbound_.<port>_._.<hostname>' format"
            )
        if parts[0] != "outbound":
            return f"domain name {host!r} invalid (label {parts[0]!r} invalid)"
        port, hostname = parts[1].strip("."), parts[3].strip(".")
        if not re.search(r"[0-9]", port):
            return f"domain name {host!r} invalid (label {port!r} invalid)"
        if not re.search(r"[a-zA-Z]", hostname):
            return f"domain name {host!r} invalid (label {hostname!r} invalid)"
        return None
    return wildcard_domain_problem(host)


# ---------------------------------------------------------------- TLS and TCP routes


def check_tls_route(
    found: Findings, path: str, route: TLSRoute, spec: VirtualService, to_gateway: bool
) -> None:
    if not route.match:
        found.error(f"{path}.match", "TLS route must have at least one match condition")
    for j, match in enumerate(route.match):
        check_tls_match(found, f"{path}.match[{j}]", match, spec, to_gateway)
    if not route.route:
        found.error(f"{path}.route", "TLS route is required")
    check_route_destinations(found, f"{path}.route", route.route)


def check_tls_match(
    found: Findings, path: str, match: TLSMatchAttributes, spec: VirtualService, to_gateway: bool
) -> None:
    if not match.sni_hosts:
        found.error(f"{path}.sniHosts", "TLS match must have at least one SNI host")
    for k, sni_host in enumerate(match.sni_hosts):
        spath = f"{path}.sniHosts[{k}]"
        problem = (
            gateway_host_problem(True, sni_host)
            if to_gateway
            else wildcard_domain_problem(sni_host)
        )
        if problem:
            if is_ip(sni_host):
                found.warn(
                    spath,
                    f"using an IP address ({sni_host!r}) goes against SNI spec and most clients "
                    "do not support this",
                )
            else:
                found.error(spath, problem)
            continue
        if not any(_subset_of(sni_host, host) for host in spec.hosts):
            found.error(
                spath,
                f"SNI host {sni_host!r} is not a compatible subset of any of the virtual service "
                f"hosts: [{', '.join(spec.hosts)}]",
            )
    _check_l4_common(found, path, match)


def check_l4_match(found: Findings, path: str, match: L4MatchAttributes) -> None:
    _check_l4_common(found, path, match)


def _check_l4_common(
    found: Findings, path: str, match: L4MatchAttributes | TLSMatchAttributes
) -> None:
    for k, subnet in enumerate(match.destination_subnets):
        if not is_ip_subnet(subnet):
            found.error(
                f"{path}.destinationSubnets[{k}]", f"{subnet} is not a valid IP or CIDR block"
            )
    if match.port:
        check_port(found, f"{path}.port", match.port)
    check_labels(found, f"{path}.sourceLabels", match.source_labels)
    for k, gateway in enumerate(match.gateways):
        check_gateway_name(found, f"{path}.gateways[{k}]", gateway)


def _subset_of(name: str, other: str) -> bool:
    """Istio's host.Name.SubsetOf."""
    name_wild, other_wild = name.startswith("*"), other.startswith("*")
    if name_wild:
        return other_wild and len(name) >= len(other) and name[1:].endswith(other[1:])
    if other_wild:
        return name.endswith(other[1:])
    return name == other
