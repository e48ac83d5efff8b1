"""VirtualService: Istio's webhook rules (``ValidateVirtualService`` in validation.go and
virtualservice.go; ``IST0106`` errors, ``IST0133`` warnings) and its rule-order warnings
(``IST0130`` unreachable rule, ``IST0131`` ineffective match), which need only the one
resource.

``check_virtual_service`` is the entry; one function per message of the API below it
(``HTTPRoute``, ``HTTPMatchRequest``, destinations, headers, fault, CORS, redirect, rewrite,
retries, TCP and TLS routes), so a rule for a field goes into the function of the message
that holds the field. Notes on what the lab does differently are Info lines (``MSH0008``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import (
    CorsPolicy,
    Destination,
    Headers,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    HTTPRoute,
    HTTPRouteDestination,
    L4MatchAttributes,
    RouteDestination,
    StringMatch,
    TCPRoute,
    TLSMatchAttributes,
    TLSRoute,
    VirtualService,
)
from mesh.config.resource import Resource
from mesh.config.retry_on import invalid_retry_policies
from mesh.config.validate.values import (
    JWT_CLAIM_PREFIX,
    Findings,
    check_cors_header_name,
    check_duration,
    check_export_to,
    check_header_operation_name,
    check_header_value,
    check_labels,
    check_match_header_name,
    check_percentage,
    check_port,
    check_regex,
    check_string_match,
    fqdn_problem,
    is_dns1123_label,
    is_ip,
    is_ip_subnet,
    wildcard_domain_problem,
)

MESH = "mesh"
CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
GRPC_STATUSES = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)
KB = 1024
MB = 1024 * KB


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


def check_gateway_name(found: Findings, path: str, name: str) -> None:
    """Istio's validateGatewayNames: ``namespace/name``, or a name (FQDN rules)."""
    namespace, sep, short = name.partition("/")
    if not sep:
        if "." in name:
            parts = name.split(".")
            found.warn(
                path,
                f"using legacy gatewayName format {name!r}; prefer the <namespace>/<name> "
                f"format: {parts[1]}/{parts[0]!r}",
            )
        problem = fqdn_problem(name)
        if problem:
            found.error(path, problem)
        return
    if not namespace or not short:
        found.error(path, "config namespace and gateway name cannot be empty")
    if not is_dns1123_label(namespace):
        found.error(path, f"invalid value for namespace: {namespace!r}")
    if not is_dns1123_label(short):
        found.error(path, f"invalid value for gateway name: {short!r}")


# ---------------------------------------------------------------- HTTPRoute


def check_http_route(found: Findings, path: str, route: HTTPRoute, delegate: bool) -> None:
    check_route_conflicts(found, path, route, delegate)
    for j, match in enumerate(route.match):
        check_match(found, f"{path}.match[{j}]", match)
    if route.headers is not None:
        check_headers(found, f"{path}.headers", route.headers)
    if route.cors_policy is not None:
        check_cors(found, f"{path}.corsPolicy", route.cors_policy)
    if route.fault is not None:
        check_fault(found, f"{path}.fault", route.fault)
    if route.mirror_percent is not None:
        if route.mirror_percent > 100:
            found.error(
                f"{path}.mirrorPercent",
                f"mirror_percent must have a max value of 100 (it has {route.mirror_percent})",
            )
        found.warn(
            f"{path}.mirrorPercent",
            'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
        )
    if route.mirror_percentage is not None:
        check_mirror_share(
            found, f"{path}.mirrorPercentage", "mirror_percentage", route.mirror_percentage.value
        )
    if route.mirror is not None:
        check_destination(found, f"{path}.mirror", route.mirror)
    for k, mirror in enumerate(route.mirrors):
        mpath = f"{path}.mirrors[{k}]"
        if mirror.destination is None:
            found.error(mpath, "destination is required for mirrors")
            continue
        check_destination(found, f"{mpath}.destination", mirror.destination)
        if mirror.percentage is not None:
            check_mirror_share(
                found, f"{mpath}.percentage", "mirror percentage", mirror.percentage.value
            )
    if route.redirect is not None:
        check_redirect(found, f"{path}.redirect", route.redirect, route.match)
    if route.direct_response is not None:
        check_direct_response(found, f"{path}.directResponse", route.direct_response)
    if route.retries is not None:
        check_retries(found, f"{path}.retries", route.retries)
    if route.rewrite is not None:
        check_rewrite(found, f"{path}.rewrite", route.rewrite)
    check_authority_rewrite(found, path, route)
    check_http_destinations(found, f"{path}.route", route)
    check_duration(found, f"{path}.timeout", route.timeout)


def check_mirror_share(found: Findings, path: str, what: str, value: float) -> None:
    """Mirror percentages: 0..100 (unlike a fault's, a small value is fine)."""
    if value > 100:
        found.error(path, f"{what} must have a max value of 100 (it has {value:g})")
    if value < 0:
        found.error(path, f"{what} must have a min value of 0 (it has {value:g})")


def check_route_conflicts(found: Findings, path: str, route: HTTPRoute, delegate: bool) -> None:
    """Istio's validateHTTPRouteConflict: one action per rule, and what may go with it."""
    if not delegate and route.delegate is not None:
        # A root rule: only the delegate acts.
        if route.redirect is not None:
            found.error(path, f"root HTTP route {route.name or ''} must not specify redirect")
        if route.route:
            found.error(path, f"root HTTP route {route.name or ''} must not specify route")
        return
    if delegate and route.delegate is not None:
        found.error(f"{path}.delegate", "delegate HTTP route cannot contain delegate")
    if route.redirect is not None:
        for present, what in (
            (bool(route.route), "route"),
            (route.fault is not None, "fault"),
            (route.rewrite is not None, "rewrite"),
            (route.direct_response is not None, "direct_response"),
        ):
            if present:
                found.error(path, f"HTTP route cannot contain both {what} and redirect")
    elif route.direct_response is not None:
        for present, what in (
            (bool(route.route), "route"),
            (route.fault is not None, "fault"),
            (route.rewrite is not None, "rewrite"),
        ):
            if present:
                found.error(path, f"HTTP route cannot contain both {what} and direct_response")
    elif not route.route:
        found.error(path, "HTTP route, redirect or direct_response is required")
    if route.mirror is not None and route.mirrors:
        found.error(path, "HTTP route cannot contain both mirror and mirrors")


def check_match(found: Findings, path: str, match: HTTPMatchRequest) -> None:
    for name, header in match.headers.items():
        hpath = f"{path}.headers.{name}"
        check_match_header_name(found, hpath, name)
        check_string_match(found, hpath, header)
    for name, header in match.without_headers.items():
        hpath = f"{path}.withoutHeaders.{name}"
        check_match_header_name(found, hpath, name)
        # `regex: "*"` is not RE2: Istio turns it into a presence match.
        if not (header.kind == "regex" and header.value == "*"):
            check_string_match(found, hpath, header)
    check_string_match(found, f"{path}.uri", match.uri, allow_empty_prefix=True)
    for name, field_match in (
        ("scheme", match.scheme),
        ("method", match.method),
        ("authority", match.authority),
    ):
        check_string_match(found, f"{path}.{name}", field_match)
    for name, param in match.query_params.items():
        check_string_match(found, f"{path}.queryParams.{name}", param)
    if match.port:
        check_port(found, f"{path}.port", match.port)
    check_labels(found, f"{path}.sourceLabels", match.source_labels)
    for k, gateway in enumerate(match.gateways):
        check_gateway_name(found, f"{path}.gateways[{k}]", gateway)
    if match.source_namespace and not is_dns1123_label(match.source_namespace):
        found.error(
            f"{path}.sourceNamespace", f"sourceNamespace match {match.source_namespace} is invalid"
        )
    if "host" in {name.lower() for name in match.headers}:
        found.lab(
            f"{path}.headers",
            "Envoy matches the Host as :authority: use authority, not headers: host (istio#23083)",
        )


ENVOY_VARIABLE = re.compile(r"%[A-Z0-9_]+(\(.*?\))?%")


def check_headers(found: Findings, path: str, headers: Headers) -> None:
    request, response = headers.request, headers.response
    for part, ops in (("request", request), ("response", response)):
        for kind, values in (("set", ops.set if ops else {}), ("add", ops.add if ops else {})):
            for name, value in values.items():
                if ENVOY_VARIABLE.search(value.replace("%%", "")):
                    found.lab(
                        f"{path}.{part}.{kind}.{name}",
                        "Envoy would substitute the %VARIABLE% in this value; the lab sends it "
                        "as written (Lab decision 12)",
                    )
    if request is not None:
        for kind, values in (("add", request.add), ("set", request.set)):
            for name, value in values.items():
                check_header_operation_name(found, f"{path}.request.{kind}", name, authority=True)
                check_header_value(found, f"{path}.request.{kind}.{name}", value)
        for name in request.remove:
            check_header_operation_name(found, f"{path}.request.remove", name, authority=False)
    if response is not None:
        for kind, values in (("add", response.add), ("set", response.set)):
            for name, value in values.items():
                check_header_operation_name(found, f"{path}.response.{kind}", name, authority=False)
                check_header_value(found, f"{path}.response.{kind}.{name}", value)
        for name in response.remove:
            check_header_operation_name(found, f"{path}.response.remove", name, authority=False)


def check_authority_rewrite(found: Findings, path: str, route: HTTPRoute) -> None:
    """Istio's validateAuthorityRewrite: the authority is rewritten in one place only."""
    current = route.rewrite.authority if route.rewrite is not None else None
    request = route.headers.request if route.headers is not None else None
    if request is None:
        return
    for values in (request.set, request.add):
        for name, value in values.items():
            if name.lower() not in ("host", ":authority"):
                continue
            if current:
                found.error(
                    f"{path}.headers.request",
                    f"authority header cannot be set multiple times: have {current!r}, "
                    f"attempting to set {value!r}",
                )
                return
            current = value


def check_cors(found: Findings, path: str, cors: CorsPolicy) -> None:
    for k, origin in enumerate(cors.allow_origins):
        if origin.kind is None or not origin.value:
            found.error(
                f"{path}.allowOrigins[{k}]",
                f"'{origin.value}' is not a valid match type for CORS allow origins",
            )
        elif origin.kind == "regex":
            check_regex(found, f"{path}.allowOrigins[{k}].regex", origin.value)
    for k, method in enumerate(cors.allow_methods):
        if method not in CORS_METHODS:
            found.error(f"{path}.allowMethods[{k}]", f"{method!r} is not a supported HTTP method")
    for field_name, names in (
        ("allowHeaders", cors.allow_headers),
        ("exposeHeaders", cors.expose_headers),
    ):
        for k, name in enumerate(names):
            check_cors_header_name(found, f"{path}.{field_name}[{k}]", name)
    if cors.max_age is not None:
        check_duration(found, f"{path}.maxAge", cors.max_age)
        if round(cors.max_age * 1e9) % 1_000_000_000:
            found.error(f"{path}.maxAge", "max_age duration is accurate only to seconds precision")
    if cors.allow_origin:
        found.lab(
            f"{path}.allowOrigin",
            "allowOrigin is deprecated in Istio's API: use allowOrigins with exact/prefix/regex",
        )


def check_fault(found: Findings, path: str, fault: HTTPFaultInjection) -> None:
    if fault.delay is None and fault.abort is None:
        found.error(path, "HTTP fault injection must have an abort and/or a delay")
    abort = fault.abort
    if abort is not None:
        apath = f"{path}.abort"
        if abort.percentage is not None:
            check_percentage(found, f"{apath}.percentage", abort.percentage.value)
        if abort.grpc_status is not None:
            if abort.grpc_status not in GRPC_STATUSES:
                found.error(
                    f"{apath}.grpcStatus",
                    f"gRPC status {abort.grpc_status!r} is not supported (use a name such as "
                    "NOT_FOUND: https://github.com/grpc/grpc/blob/master/doc/statuscodes.md)",
                )
            found.lab(apath, "grpcStatus aborts are not injected by the lab (Lab decision 7)")
        elif abort.http2_error is not None:
            found.error(f"{apath}.http2Error", "HTTP/2 abort fault injection not supported yet")
        elif abort.http_status is not None:
            check_http_status(found, f"{apath}.httpStatus", abort.http_status)
        else:
            found.warn(apath, "abort configured, but error type not set")
        if abort.percentage is None:
            found.lab(
                apath,
                "no percentage: this abort is never injected (Istio injects 0% without percentage)",
            )
    delay = fault.delay
    if delay is not None:
        dpath = f"{path}.delay"
        if delay.percentage is not None:
            check_percentage(found, f"{dpath}.percentage", delay.percentage.value)
        if delay.fixed_delay is not None:
            check_duration(found, f"{dpath}.fixedDelay", delay.fixed_delay)
        elif delay.exponential_delay is not None:
            check_duration(found, f"{dpath}.exponentialDelay", delay.exponential_delay)
            found.error(f"{dpath}.exponentialDelay", "exponentialDelay not supported yet")
        if delay.percent is not None:
            found.lab(f"{dpath}.percent", "percent is deprecated: use percentage: {value: N}")
        elif delay.percentage is None:
            found.lab(
                dpath,
                "no percentage: this delay is never injected (Istio injects 0% without percentage)",
            )


def check_http_status(found: Findings, path: str, status: int) -> None:
    if not 200 <= status <= 600:
        found.error(path, f"HTTP status {status} is not in range 200-599")


def check_destination(found: Findings, path: str, destination: Destination) -> None:
    host = destination.host
    if host == "*":
        found.error(f"{path}.host", f"invalid destination host {host}")
    else:
        problem = wildcard_domain_problem(host)
        if problem:
            found.error(f"{path}.host", problem)
    if destination.subset is not None:
        check_subset_name(found, f"{path}.subset", destination.subset)
    if destination.port is not None:
        check_port(found, f"{path}.port.number", destination.port.number)


def check_subset_name(found: Findings, path: str, name: str) -> None:
    if not name:
        found.error(path, "subset name cannot be empty")
    elif not is_dns1123_label(name):
        found.error(path, f"subset name is invalid: {name}")


def check_http_destinations(found: Findings, path: str, route: HTTPRoute) -> None:
    check_route_destinations(found, path, route.route)
    for k, dest in enumerate(route.route):
        if dest.headers is not None:
            check_headers(found, f"{path}[{k}].headers", dest.headers)
    weights = [dest.weight or 0 for dest in route.route]
    if len(weights) > 1 and sum(weights) not in (0, 100) and min(weights) >= 0:
        found.lab(
            path,
            f"weights sum to {sum(weights)}, not 100: shares are relative "
            f"({'/'.join(map(str, weights))}), as in Istio ≥ 1.15 (Lab decision 2)",
        )


def check_route_destinations(
    found: Findings, path: str, destinations: Sequence[RouteDestination | HTTPRouteDestination]
) -> None:
    """Istio's validateRouteDestinations / validateHTTPRouteDestinations (their shared part)."""
    total = 0
    for k, dest in enumerate(destinations):
        dpath = f"{path}[{k}]"
        if dest.destination is None:
            found.error(f"{dpath}.destination", "destination is required")
        else:
            check_destination(found, f"{dpath}.destination", dest.destination)
        weight = dest.weight or 0
        if weight < 0:
            found.error(f"{dpath}.weight", f"weight {weight} < 0")
        total += weight
    if len(destinations) > 1 and total == 0:
        found.error(path, "total destination weight = 0")


def check_redirect(
    found: Findings, path: str, redirect: HTTPRedirect, matches: Sequence[HTTPMatchRequest]
) -> None:
    """Istio's validateHTTPRedirect (it stops at the first problem)."""
    if redirect.uri and redirect.prefix_rewrite:
        found.error(path, "redirect may only specify one of uri or prefix_rewrite")
        return
    if redirect.prefix_rewrite:
        for match in matches:
            if match.uri is not None and match.uri.kind != "prefix":
                found.error(
                    f"{path}.prefixRewrite",
                    "redirect prefix_rewrite requires all URI matches to use prefix match type",
                )
                return
    if not (
        redirect.uri
        or redirect.prefix_rewrite
        or redirect.authority
        or redirect.port
        or redirect.derive_port
        or redirect.scheme
    ):
        found.error(path, "redirect must specify URI, authority, scheme, or port")
        return
    if redirect.redirect_code and not 300 <= redirect.redirect_code <= 399:
        found.error(
            f"{path}.redirectCode",
            f"{redirect.redirect_code} is not a valid redirect code, must be 3xx",
        )
        return
    if redirect.scheme and redirect.scheme not in ("http", "https"):
        found.error(f"{path}.scheme", 'invalid redirect scheme, must be "http" or "https"')
        return
    if redirect.port:
        check_port(found, f"{path}.port", redirect.port)


def check_direct_response(found: Findings, path: str, response: HTTPDirectResponse) -> None:
    body = response.body
    if body is not None:
        size = 0
        if body.string is not None:
            size = len(body.string.encode())
        elif body.bytes is not None:
            try:
                size = len(base64.b64decode(body.bytes, validate=True))
            except (binascii.Error, ValueError):
                found.error(f"{path}.body.bytes", "bytes must be base64 (proto JSON)")
        if size > MB:
            found.error(
                f"{path}.body",
                "large direct_responses may impact control plane performance, must be less than 1MB",
            )
        elif size > 100 * KB:
            found.warn(
                f"{path}.body", "large direct_responses may impact control plane performance"
            )
    check_http_status(found, f"{path}.status", response.status or 0)


def check_retries(found: Findings, path: str, retries: HTTPRetry) -> None:
    """Istio's ValidateHTTPRetry: retryOn is split on commas exactly as written."""
    attempts = retries.attempts or 0
    if attempts < 0:
        found.error(f"{path}.attempts", "attempts cannot be negative")
    if attempts == 0 and (
        retries.per_try_timeout is not None
        or retries.retry_on
        or retries.retry_remote_localities is not None
    ):
        found.error(path, "http retry policy configured when attempts are set to 0 (disabled)")
    check_duration(found, f"{path}.perTryTimeout", retries.per_try_timeout)
    if retries.retry_on:
        for policy in invalid_retry_policies(retries.retry_on):
            found.error(f"{path}.retryOn", f"{policy!r} is not a valid retryOn policy")
    check_duration(found, f"{path}.backoff", retries.backoff)


def check_rewrite(found: Findings, path: str, rewrite: HTTPRewrite) -> None:
    if rewrite.uri and rewrite.uri_regex_rewrite is not None:
        found.error(path, "rewrite may only contain one of URI or UriRegexRewrite")
        return
    if not rewrite.uri and rewrite.uri_regex_rewrite is None and not rewrite.authority:
        found.error(
            path,
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority. "
            "Only one of URI or UriRegexRewrite may be specified",
        )
        return
    regex = rewrite.uri_regex_rewrite
    if regex is not None:
        if not regex.match or not regex.rewrite:
            found.error(
                f"{path}.uriRegexRewrite",
                "UriRegexRewrite requires both Rewrite and Match fields to be specified",
            )
        else:
            check_regex(found, f"{path}.uriRegexRewrite.match", regex.match)


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


# ---------------------------------------------------------------- rule order (IST0130/IST0131)


@dataclass(frozen=True)
class _PrefixMatch:
    """Istio's OverlappingMatchValidationForHTTPRoute: a prefix match, flattened."""

    rule: str
    match: str
    prefix: str
    port: int
    method: str
    authority: str
    headers: Mapping[str, str]
    query_params: Mapping[str, str]
    without_headers: Mapping[str, str]


def _exact_or_prefix(match: StringMatch | None) -> str:
    if match is None:
        return ""
    if match.kind == "exact" and match.value:
        return "exact:" + match.value
    if match.kind == "prefix" and match.value:
        return "prefix:" + match.value
    return ""


def _rule_name(route: HTTPRoute, index: int) -> str:
    return f'"{route.name}"' if route.name else f"#{index}"


def _match_name(match: HTTPMatchRequest, index: int) -> str:
    return f'"{match.name}"' if match.name else f"#{index}"


def _prefix_match(
    route: HTTPRoute, index: int, match: HTTPMatchRequest, j: int
) -> _PrefixMatch | None:
    if match.uri is None or match.uri.kind != "prefix" or not match.uri.value:
        return None
    return _PrefixMatch(
        rule=_rule_name(route, index),
        match=_match_name(match, j),
        prefix=match.uri.value,
        port=match.port or 0,
        method=_exact_or_prefix(match.method) or "exact:GET",
        authority=_exact_or_prefix(match.authority),
        headers={k: _exact_or_prefix(v) for k, v in match.headers.items()},
        query_params={k: _exact_or_prefix(v) for k, v in match.query_params.items()},
        without_headers={k: _exact_or_prefix(v) for k, v in match.without_headers.items()},
    )


def _covers(first: _PrefixMatch, later: _PrefixMatch) -> bool:
    """Istio's coveredValidation: does the earlier prefix match catch the later one's?"""
    if not later.prefix.startswith(first.prefix) or later.port != first.port:
        return False
    if first.method != later.method and not first.method.startswith(later.method):
        return False
    if first.authority != later.authority and not first.authority.startswith(later.authority):
        return False
    for mine, theirs in (
        (first.headers, later.headers),
        (first.query_params, later.query_params),
        (first.without_headers, later.without_headers),
    ):
        if len(mine) != len(theirs):
            return False
        for key, value in mine.items():
            if key not in theirs:
                return False
            if value != theirs[key] and not value.startswith(theirs[key]):
                return False
    return True


def check_reachability(found: Findings, spec: VirtualService) -> None:
    """Istio's analyzeUnreachableHTTPRules (and the TCP/TLS ones): warnings."""

    def unreachable(path: str, rule: str, reason: str) -> None:
        found.warn(path, f"virtualService rule {rule} not used ({reason})", codes.UNREACHABLE_RULE)

    def ineffective(path: str, rule: str, match: str, duplicate: str) -> None:
        found.warn(
            path,
            f"virtualService rule {rule} match {match} is not used "
            f"(duplicate/overlapping match in rule {duplicate})",
            codes.INEFFECTIVE_MATCH,
        )

    prefixes: list[tuple[str, _PrefixMatch]] = []

    def http_first(path: str, i: int, j: int, match: HTTPMatchRequest) -> None:
        flattened = _prefix_match(spec.http[i], i, match, j)
        if flattened is not None:
            prefixes.append((path, flattened))

    _scan_rule_order(
        "http",
        spec.http,
        lambda match: repr(dataclasses.replace(match, name=None)),
        lambda i: _rule_name(spec.http[i], i),
        _match_name,
        unreachable,
        ineffective,
        http_first,
    )
    for a, (_, earlier) in enumerate(prefixes):
        for later_path, later in prefixes[a + 1 :]:
            if later.prefix == earlier.prefix:
                continue
            if _covers(earlier, later):
                ineffective(
                    later_path,
                    later.rule,
                    f"{later.match} of prefix {later.prefix}",
                    f"{earlier.match} of prefix {earlier.prefix} on {earlier.rule}",
                )
    for field_name, routes in (("tcp", spec.tcp), ("tls", spec.tls)):
        _scan_rule_order(
            field_name,
            routes,
            repr,
            lambda i: f"#{i}",
            lambda _m, j: f"#{j}",
            unreachable,
            ineffective,
        )


def _scan_rule_order(
    field_name: str,
    routes: Sequence[HTTPRoute | TCPRoute | TLSRoute],
    key_of: Callable[[Any], str],
    rule_name: Callable[[int], str],
    match_name: Callable[[Any, int], str],
    unreachable: Callable[[str, str, str], None],
    ineffective: Callable[[str, str, str, str], None],
    first_seen: Callable[[str, int, int, Any], None] | None = None,
) -> None:
    """Istio's analyzeUnreachable{HTTP,TCP,TLS}Rules: rules after a match-less one, and
    matches that repeat an earlier rule's."""
    seen: dict[str, int] = {}
    catch_all = -1
    for i, route in enumerate(routes):
        path, rule = f"{field_name}[{i}]", rule_name(i)
        if not route.match:
            if catch_all >= 0:
                unreachable(path, rule, "only the last rule can have no matches")
            catch_all = i
            continue
        duplicates = 0
        for j, match in enumerate(route.match):
            if catch_all >= 0:
                unreachable(path, rule, "route without matches defined before")
                continue
            key = key_of(match)
            if key in seen:
                ineffective(f"{path}.match[{j}]", rule, match_name(match, j), rule_name(seen[key]))
                duplicates += 1
                continue
            seen[key] = i
            if first_seen is not None:
                first_seen(f"{path}.match[{j}]", i, j, match)
        if duplicates == len(route.match):
            unreachable(path, rule, "all matches used by prior rules")
