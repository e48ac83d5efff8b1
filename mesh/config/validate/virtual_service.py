"""VirtualService: the per-resource checks of Istio's webhook (``IST0106`` errors,
``IST0133`` warnings) plus the rule-order ones of its analyzers (``IST0130`` unreachable
rule, ``IST0131`` ineffective match), which need only the one resource.

``check_virtual_service`` is the entry; one function per message of the API below it
(``HTTPRoute``, ``HTTPMatchRequest``, destinations, headers, fault, CORS), so a rule for a
field goes into the function of the message that holds the field.
"""

from __future__ import annotations

from mesh.config import hosts as hostnames
from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import (
    CorsPolicy,
    Destination,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRoute,
    VirtualService,
)
from mesh.config.resource import Resource
from mesh.config.retry_on import unknown_retry_tokens
from mesh.config.validate.values import (
    DNS1123_LABEL,
    HEADER_NAME,
    WILDCARD_HOST,
    Findings,
    check_deprecated_percent,
    check_duration,
    check_header_name,
    check_percent,
    check_regex,
    check_string_match,
)

REDIRECT_CODES = (301, 302, 303, 307, 308)


def check_virtual_service(resource: Resource, out: list[Issue]) -> None:
    spec: VirtualService = resource.spec
    found = Findings(resource, out)
    gateways = [hostnames.gateway_key(g) for g in spec.gateways] or ["mesh"]
    if not spec.hosts:
        found.error(
            "hosts",
            "at least one host is required (delegate VirtualServices are not supported by the lab)",
        )
    seen: set[str] = set()
    for i, host in enumerate(spec.hosts):
        path = f"hosts[{i}]"
        if host == "*" and "mesh" in gateways:
            found.error(
                path, 'wildcard host "*" is not allowed for VirtualServices bound to the mesh'
            )
        elif not WILDCARD_HOST.match(hostnames.strip_namespace(host)):
            found.error(
                path,
                f"{host!r} is not a valid host name (a wildcard is allowed only as the left-most label)",
            )
        normal = hostnames.normalize(host)
        if normal in seen:
            found.error(
                path, f"host {host!r} is listed twice (hosts in one VirtualService may not overlap)"
            )
        seen.add(normal)
    for i, gateway in enumerate(spec.gateways):
        if not gateway or not DNS1123_LABEL.match(hostnames.gateway_key(gateway).split("/")[-1]):
            found.error(f"gateways[{i}]", f"{gateway!r} is not a valid gateway name")
    if not spec.http and not spec.tcp and not spec.tls:
        found.error("", "a VirtualService needs http, tcp or tls routes")
    if spec.tcp:
        found.info("tcp", "tcp routes are accepted but not served by the lab (HTTP only)")
    if spec.tls:
        found.info("tls", "tls routes are accepted but not served by the lab (HTTP only)")
    for i, route in enumerate(spec.http):
        check_http_route(found, f"http[{i}]", route)
    check_reachability(found, spec)


def check_http_route(found: Findings, path: str, route: HTTPRoute) -> None:
    actions = [
        name
        for name, present in (
            ("route", bool(route.route)),
            ("redirect", route.redirect is not None),
            ("directResponse", route.direct_response is not None),
            ("delegate", route.delegate is not None),
        )
        if present
    ]
    if not actions:
        found.error(path, "a rule needs one of route, redirect, directResponse or delegate")
    elif len(actions) > 1:
        found.error(
            path,
            f"only one of route, redirect, directResponse, delegate may be set (found {', '.join(actions)})",
        )
    if route.delegate is not None:
        found.error(f"{path}.delegate", "delegate VirtualServices are not supported by the lab")
    local_reply = route.redirect is not None or route.direct_response is not None
    if local_reply and route.fault is not None:
        found.error(f"{path}.fault", "fault is not allowed with redirect or directResponse")
    if local_reply and route.rewrite is not None:
        found.error(f"{path}.rewrite", "rewrite is not allowed with redirect or directResponse")
    if route.mirror is not None and route.mirrors:
        found.error(path, "use mirror or mirrors, not both")
    for j, match in enumerate(route.match):
        check_match(found, f"{path}.match[{j}]", match)
    check_destinations(found, path, route)
    if route.headers is not None:
        check_headers(found, f"{path}.headers", route.headers)
    check_duration(found, f"{path}.timeout", route.timeout)
    if route.retries is not None:
        retries = route.retries
        rpath = f"{path}.retries"
        if retries.attempts is not None and retries.attempts < 0:
            found.error(
                f"{rpath}.attempts", f"attempts cannot be negative (it is {retries.attempts})"
            )
        if not retries.attempts and (retries.per_try_timeout is not None or retries.retry_on):
            found.error(
                rpath, "perTryTimeout and retryOn need attempts > 0 (attempts: 0 disables retries)"
            )
        check_duration(found, f"{rpath}.perTryTimeout", retries.per_try_timeout)
        if retries.retry_on:
            unknown = unknown_retry_tokens(retries.retry_on)
            if unknown:
                found.error(
                    f"{rpath}.retryOn", f"unknown retryOn condition(s): {', '.join(unknown)}"
                )
        if retries.backoff is not None:
            check_duration(found, f"{rpath}.backoff", retries.backoff)
    if route.fault is not None:
        check_fault(found, f"{path}.fault", route.fault)
    if route.redirect is not None:
        redirect = route.redirect
        if redirect.redirect_code is not None and redirect.redirect_code not in REDIRECT_CODES:
            found.error(
                f"{path}.redirect.redirectCode",
                f"redirect code must be one of {', '.join(map(str, REDIRECT_CODES))} (it is {redirect.redirect_code})",
            )
        if redirect.port is not None and redirect.derive_port is not None:
            found.error(f"{path}.redirect", "port and derivePort cannot both be set")
        if redirect.port is not None and not 0 < redirect.port < 65536:
            found.error(f"{path}.redirect.port", f"port {redirect.port} is out of range")
    if route.direct_response is not None:
        status = route.direct_response.status
        if status is None:
            found.error(f"{path}.directResponse.status", "status is required")
        elif not 200 <= status <= 600:
            found.error(
                f"{path}.directResponse.status",
                f"status must be between 200 and 600 (it is {status})",
            )
    if route.rewrite is not None:
        rewrite = route.rewrite
        if rewrite.uri is not None and rewrite.uri_regex_rewrite is not None:
            found.error(f"{path}.rewrite", "uri and uriRegexRewrite cannot both be set")
        if rewrite.uri_regex_rewrite is not None:
            check_regex(
                found, f"{path}.rewrite.uriRegexRewrite.match", rewrite.uri_regex_rewrite.match
            )
        if (
            rewrite.authority
            and route.headers
            and route.headers.request
            and ("host" in {k.lower() for k in route.headers.request.set})
        ):
            found.error(
                f"{path}.rewrite.authority",
                "authority rewrite conflicts with headers.request.set host",
            )
    if route.mirror_percentage is not None:
        check_percent(found, f"{path}.mirrorPercentage.value", route.mirror_percentage.value)
    if route.mirror_percent is not None:
        check_deprecated_percent(
            found, f"{path}.mirrorPercent", route.mirror_percent, "mirrorPercentage"
        )
    for k, mirror in enumerate(route.mirrors):
        if mirror.destination is None:
            found.error(f"{path}.mirrors[{k}].destination", "destination is required")
        if mirror.percentage is not None:
            check_percent(found, f"{path}.mirrors[{k}].percentage.value", mirror.percentage.value)
    if route.cors_policy is not None:
        check_cors(found, f"{path}.corsPolicy", route.cors_policy)


def check_match(found: Findings, path: str, match: HTTPMatchRequest) -> None:
    conditions = [
        match.uri,
        match.scheme,
        match.method,
        match.authority,
        match.port,
        match.headers or None,
        match.query_params or None,
        match.without_headers or None,
        match.source_labels or None,
        match.gateways or None,
        match.source_namespace,
    ]
    if all(c is None for c in conditions) and match.ignore_uri_case is None:
        found.error(path, "a match entry may not be empty (leave out match to match everything)")
    if match.uri is not None:
        check_string_match(found, f"{path}.uri", match.uri, allow_empty_prefix=True)
    for name, field in (
        ("scheme", match.scheme),
        ("method", match.method),
        ("authority", match.authority),
    ):
        if field is not None:
            check_string_match(found, f"{path}.{name}", field)
    for name, header in match.headers.items():
        hpath = f"{path}.headers.{name}"
        check_header_name(found, hpath, name)
        if name.lower() == "host":
            found.warn(hpath, "match the Host with authority, not headers: host (istio#23083)")
        check_string_match(found, hpath, header)
    for name, header in match.without_headers.items():
        hpath = f"{path}.withoutHeaders.{name}"
        check_header_name(found, hpath, name)
        if not (header.kind == "regex" and header.value == "*"):
            check_string_match(found, hpath, header)
    for name, param in match.query_params.items():
        check_string_match(found, f"{path}.queryParams.{name}", param)
    if match.port is not None and not 0 < match.port < 65536:
        found.error(f"{path}.port", f"port {match.port} is out of range")
    if match.source_namespace is not None and match.source_namespace != "default":
        found.info(f"{path}.sourceNamespace", "the lab has one namespace, default")


def check_destinations(found: Findings, path: str, route: HTTPRoute) -> None:
    weights = []
    for k, dest in enumerate(route.route):
        dpath = f"{path}.route[{k}]"
        if dest.destination is None:
            found.error(f"{dpath}.destination", "destination is required")
        else:
            check_destination(found, f"{dpath}.destination", dest.destination)
        if dest.weight is not None and dest.weight < 0:
            found.error(f"{dpath}.weight", f"weight cannot be negative (it is {dest.weight})")
        if dest.headers is not None:
            check_headers(found, f"{dpath}.headers", dest.headers)
        weights.append(dest.weight or 0)
    if len(route.route) > 1 and all(w >= 0 for w in weights):
        total = sum(weights)
        if total == 0:
            found.error(
                f"{path}.route", "weights are all zero: at least one destination needs a weight > 0"
            )
        elif total != 100:
            found.warn(
                f"{path}.route",
                f"weights sum to {total}, not 100: shares are relative ({'/'.join(map(str, weights))}), "
                "but Istio before 1.15 rejected this and every course example sums to 100",
            )
    if route.mirror is not None:
        check_destination(found, f"{path}.mirror", route.mirror)


def check_destination(found: Findings, path: str, destination: Destination) -> None:
    if not destination.host:
        found.error(f"{path}.host", "host is required")
    if destination.subset is not None and not DNS1123_LABEL.match(destination.subset):
        found.error(
            f"{path}.subset", f"subset {destination.subset!r} is not a valid name (DNS-1123 label)"
        )
    if destination.port is not None and destination.port.number is not None:
        if not 0 < destination.port.number < 65536:
            found.error(f"{path}.port.number", f"port {destination.port.number} is out of range")


def check_headers(found: Findings, path: str, headers: Headers) -> None:
    for part, ops in (("request", headers.request), ("response", headers.response)):
        if ops is None:
            continue
        check_header_operations(found, f"{path}.{part}", ops)


def check_header_operations(found: Findings, path: str, ops: HeaderOperations) -> None:
    for kind, names in (("set", ops.set), ("add", ops.add), ("remove", ops.remove)):
        for name in names:
            if name.lower() in ("host", ":authority") and kind != "remove":
                continue
            if name.startswith(":") or not HEADER_NAME.match(name):
                found.error(f"{path}.{kind}", f"{name!r} is not a header that can be changed")


def check_fault(found: Findings, path: str, fault: HTTPFaultInjection) -> None:
    if fault.delay is None and fault.abort is None:
        found.error(path, "a fault needs delay and/or abort")
    if fault.delay is not None:
        delay = fault.delay
        dpath = f"{path}.delay"
        if delay.fixed_delay is None and delay.exponential_delay is None:
            found.error(dpath, "fixedDelay is required")
        if delay.exponential_delay is not None:
            found.error(f"{dpath}.exponentialDelay", "exponentialDelay is not supported by Istio")
        check_duration(found, f"{dpath}.fixedDelay", delay.fixed_delay)
        if delay.percentage is not None:
            check_percent(found, f"{dpath}.percentage.value", delay.percentage.value)
        if delay.percent is not None:
            check_deprecated_percent(found, f"{dpath}.percent", delay.percent, "percentage")
        if delay.percentage is None and delay.percent is None:
            found.warn(
                dpath,
                "no percentage: this delay is never injected (Istio injects 0% without percentage)",
            )
    if fault.abort is not None:
        abort = fault.abort
        apath = f"{path}.abort"
        if abort.http_status is None and abort.grpc_status is None and abort.http2_error is None:
            found.error(apath, "httpStatus is required")
        if abort.http_status is not None and not 200 <= abort.http_status <= 600:
            found.error(
                f"{apath}.httpStatus",
                f"HTTP status must be between 200 and 600 (it is {abort.http_status})",
            )
        if abort.grpc_status is not None or abort.http2_error is not None:
            found.info(
                apath, "grpcStatus/http2Error aborts are not injected by the lab (HTTP only)"
            )
        if abort.percentage is not None:
            check_percent(found, f"{apath}.percentage.value", abort.percentage.value)
        else:
            found.warn(
                apath,
                "no percentage: this abort is never injected (Istio injects 0% without percentage)",
            )


def check_cors(found: Findings, path: str, cors: CorsPolicy) -> None:
    for k, origin in enumerate(cors.allow_origins):
        check_string_match(found, f"{path}.allowOrigins[{k}]", origin)
    if cors.allow_origin:
        found.warn(
            f"{path}.allowOrigin",
            "allowOrigin is deprecated: use allowOrigins with exact/prefix/regex",
            codes.DEPRECATED,
        )
    check_duration(found, f"{path}.maxAge", cors.max_age)
    for k, method in enumerate(cors.allow_methods):
        if not method or not method.isalpha():
            found.error(f"{path}.allowMethods[{k}]", f"{method!r} is not an HTTP method")


def _match_key(match: HTTPMatchRequest) -> object:
    return repr(match)


def _is_catch_all(route: HTTPRoute) -> bool:
    if not route.match:
        return True
    for match in route.match:
        only_uri = (
            match.uri is not None
            and match.uri.kind == "prefix"
            and match.uri.value in ("", "/")
            and not (match.headers or match.query_params or match.without_headers)
            and match.method is None
            and match.scheme is None
            and match.authority is None
            and match.port is None
            and not match.source_labels
            and not match.gateways
        )
        if only_uri:
            return True
    return False


def check_reachability(found: Findings, spec: VirtualService) -> None:
    """IST0130 rules after a catch-all or with only duplicated matches; IST0131 duplicates."""
    catch_all_at: int | None = None
    earlier: dict[object, str] = {}
    for i, route in enumerate(spec.http):
        path = f"http[{i}]"
        if catch_all_at is not None:
            found.warn(
                path,
                f"rule is unreachable: http[{catch_all_at}] before it matches every request",
                codes.UNREACHABLE_RULE,
            )
            continue
        duplicates = 0
        for j, match in enumerate(route.match):
            key = _match_key(match)
            if key in earlier:
                duplicates += 1
                found.out.append(
                    found.resource.issue(
                        "Info",
                        codes.INEFFECTIVE_MATCH,
                        f"{path}.match[{j}]",
                        f"match is ineffective: the same match appears earlier at {earlier[key]}",
                    )
                )
            else:
                earlier[key] = f"{path}.match[{j}]"
        if route.match and duplicates == len(route.match):
            found.warn(
                path,
                "rule is unreachable: every match repeats an earlier rule's",
                codes.UNREACHABLE_RULE,
            )
        if _is_catch_all(route):
            catch_all_at = i
