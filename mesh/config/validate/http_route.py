"""VirtualService HTTP routes: Istio's webhook rules for ``HTTPRoute`` and the messages in it
(``HTTPMatchRequest``, destinations, headers, fault, CORS, redirect, direct response, rewrite,
retries), one function per message (``IST0106`` errors, ``IST0133`` warnings, lab notes as
``MSH0008``). ``check_route_destinations`` is shared with TCP and TLS routes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

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
    RouteDestination,
)
from mesh.config.retry_on import invalid_retry_policies
from mesh.config.validate.values import (
    Findings,
    check_cors_header_name,
    check_duration,
    check_gateway_name,
    check_header_operation_name,
    check_header_value,
    check_labels,
    check_match_header_name,
    check_percentage,
    check_port,
    check_regex,
    check_string_match,
    is_dns1123_label,
    wildcard_domain_problem,
)

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
