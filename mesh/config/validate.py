"""``analyze(resources, endpoints)``: every semantic and cross-reference problem, Istio-style.

Two layers, as in Istio: the webhook's per-resource checks (``IST0106`` errors and
``IST0133`` warnings: bounds, conflicts, regexes, durations) and the analyzers'
cross-resource checks (``IST0101`` missing host/subset/gateway, ``IST0109`` two mesh
VirtualServices for a host, ``IST0130``/``IST0131`` unreachable or ineffective rules,
``IST0132`` host not in gateway, ``IST0145`` conflicting gateways, ``IST0173`` subset that
selects no pods, ``IST0174`` DestinationRule for an unknown host), plus deprecations and the
lab's own notes (fields the lab accepts but does not act on).

Known hosts and pods: the given endpoints (a live registry), or, offline, the lab topology's
pods, so ``reviews`` is a known host and IST0173 works without a running mesh.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import re2

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.loader import Resource
from mesh.config.model import (
    CorsPolicy,
    Destination,
    DestinationRule,
    Gateway,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRoute,
    LoadBalancerSettings,
    OutlierDetection,
    StringMatch,
    TrafficPolicy,
    VirtualService,
)
from mesh.resilience.retry import unknown_retry_tokens
from mesh.routing import hosts as hostnames
from mesh.snapshot import Endpoint

MAX_REGEX_LENGTH = 1024
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
WILDCARD_HOST = re.compile(
    r"^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*)$"
)
REDIRECT_CODES = (301, 302, 303, 307, 308)
SERVER_PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS")


class _Findings:
    """Collects issues for one resource with its file, line and name filled in."""

    def __init__(self, resource: Resource, out: list[Issue]) -> None:
        self.resource = resource
        self.out = out

    def error(self, path: str, message: str, code: str = codes.SCHEMA_VALIDATION_ERROR) -> None:
        self.out.append(self.resource.issue("Error", code, path, message))

    def warn(self, path: str, message: str, code: str = codes.SCHEMA_WARNING) -> None:
        self.out.append(self.resource.issue("Warning", code, path, message))

    def info(self, path: str, message: str, code: str = codes.NOT_SUPPORTED) -> None:
        self.out.append(self.resource.issue("Info", code, path, message))


# ---------------------------------------------------------------- shared checks


def check_regex(found: _Findings, path: str, pattern: str) -> bool:
    if not pattern:
        found.error(path, "regex must not be empty")
        return False
    if len(pattern) > MAX_REGEX_LENGTH:
        found.error(path, f"regex is {len(pattern)} characters; the limit is {MAX_REGEX_LENGTH}")
        return False
    try:
        options = re2.Options()
        options.log_errors = False
        re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = (
            ' (to test for presence, use {} instead of regex "*")'
            if pattern in ("*", ".*?*")
            else ""
        )
        found.error(path, f"invalid regex {pattern!r}: {reason}{hint}")
        return False
    return True


def check_string_match(
    found: _Findings, path: str, match: StringMatch, allow_empty_prefix: bool = False
) -> None:
    if match.kind == "prefix" and not match.value and not allow_empty_prefix:
        found.error(
            f"{path}.prefix",
            "empty prefix is not allowed here; to match any value use {} (presence)",
        )
    elif match.kind == "regex":
        check_regex(found, f"{path}.regex", match.value)


def check_duration(found: _Findings, path: str, seconds: float | None) -> None:
    if seconds is not None and seconds < 0.001:
        found.error(path, f"duration must be at least 1ms (got {seconds * 1000:g}ms)")


def check_percent(found: _Findings, path: str, value: float) -> None:
    if value < 0 or value > 100:
        found.error(path, f"percentage must be between 0 and 100 (it is {value:g})")
    elif 0 < value < 0.0001:
        found.error(path, f"percentage must be 0 or at least 0.0001 (it is {value:g})")


def check_deprecated_percent(found: _Findings, path: str, value: int, replacement: str) -> None:
    """The integer percent fields Istio deprecated in favour of ``{value: N}`` percentages."""
    field_name = path.rsplit(".", 1)[-1]
    found.warn(
        path,
        f"{field_name} is deprecated: use {replacement}: {{value: N}}",
        codes.DEPRECATED,
    )
    if not 0 <= value <= 100:
        found.error(path, f"must be between 0 and 100 (it is {value})")


def check_header_name(found: _Findings, path: str, name: str) -> None:
    if not name:
        found.error(path, "header name must not be empty")
    elif name.startswith(":"):
        found.error(
            path,
            f"pseudo-header {name!r} cannot be matched as a header: use the uri, method, "
            "scheme or authority field",
        )
    elif not HEADER_NAME.match(name):
        found.error(path, f"{name!r} is not a valid header name")


# ---------------------------------------------------------------- VirtualService


def check_virtual_service(resource: Resource, out: list[Issue]) -> None:
    spec: VirtualService = resource.spec
    found = _Findings(resource, out)
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


def check_http_route(found: _Findings, path: str, route: HTTPRoute) -> None:
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


def check_match(found: _Findings, path: str, match: HTTPMatchRequest) -> None:
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


def check_destinations(found: _Findings, path: str, route: HTTPRoute) -> None:
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


def check_destination(found: _Findings, path: str, destination: Destination) -> None:
    if not destination.host:
        found.error(f"{path}.host", "host is required")
    if destination.subset is not None and not DNS1123_LABEL.match(destination.subset):
        found.error(
            f"{path}.subset", f"subset {destination.subset!r} is not a valid name (DNS-1123 label)"
        )
    if destination.port is not None and destination.port.number is not None:
        if not 0 < destination.port.number < 65536:
            found.error(f"{path}.port.number", f"port {destination.port.number} is out of range")


def check_headers(found: _Findings, path: str, headers: Headers) -> None:
    for part, ops in (("request", headers.request), ("response", headers.response)):
        if ops is None:
            continue
        check_header_operations(found, f"{path}.{part}", ops)


def check_header_operations(found: _Findings, path: str, ops: HeaderOperations) -> None:
    for kind, names in (("set", ops.set), ("add", ops.add), ("remove", ops.remove)):
        for name in names:
            if name.lower() in ("host", ":authority") and kind != "remove":
                continue
            if name.startswith(":") or not HEADER_NAME.match(name):
                found.error(f"{path}.{kind}", f"{name!r} is not a header that can be changed")


def check_fault(found: _Findings, path: str, fault: HTTPFaultInjection) -> None:
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


def check_cors(found: _Findings, path: str, cors: CorsPolicy) -> None:
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


def check_reachability(found: _Findings, spec: VirtualService) -> None:
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


# ---------------------------------------------------------------- DestinationRule


def check_destination_rule(resource: Resource, out: list[Issue]) -> None:
    spec: DestinationRule = resource.spec
    found = _Findings(resource, out)
    if not spec.host:
        found.error("host", "host is required")
    elif not WILDCARD_HOST.match(spec.host):
        found.error("host", f"{spec.host!r} is not a valid host name")
    if spec.traffic_policy is not None:
        check_traffic_policy(found, "trafficPolicy", spec.traffic_policy)
    names: dict[str, int] = {}
    for i, subset in enumerate(spec.subsets):
        path = f"subsets[{i}]"
        if not subset.name:
            found.error(f"{path}.name", "subset name is required")
        elif not DNS1123_LABEL.match(subset.name):
            found.error(
                f"{path}.name", f"subset name {subset.name!r} is not a valid DNS-1123 label"
            )
        elif subset.name in names:
            found.error(
                f"{path}.name",
                f"duplicate subset name {subset.name!r} (first at subsets[{names[subset.name]}])",
            )
        else:
            names[subset.name] = i
        if subset.traffic_policy is not None:
            check_traffic_policy(found, f"{path}.trafficPolicy", subset.traffic_policy)
    if spec.workload_selector is not None:
        found.info(
            "workloadSelector",
            "workloadSelector is accepted but the lab applies the rule to every proxy",
        )


def check_traffic_policy(found: _Findings, path: str, policy: TrafficPolicy) -> None:
    if policy == TrafficPolicy():
        found.error(path, "trafficPolicy must set at least one field")
        return
    if policy.load_balancer is not None:
        check_load_balancer(found, f"{path}.loadBalancer", policy.load_balancer)
    pool = policy.connection_pool
    if pool is not None:
        ppath = f"{path}.connectionPool"
        if pool.tcp is None and pool.http is None:
            found.error(ppath, "connectionPool must set tcp or http")
        for section, settings in (("tcp", pool.tcp), ("http", pool.http)):
            if settings is None:
                continue
            for field_name in settings.__slots__:  # type: ignore[attr-defined]
                value = getattr(settings, field_name)
                if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                    found.error(
                        f"{ppath}.{section}", f"{field_name} cannot be negative (it is {value})"
                    )
        if pool.tcp is not None:
            check_duration(found, f"{ppath}.tcp.connectTimeout", pool.tcp.connect_timeout)
            check_duration(found, f"{ppath}.tcp.idleTimeout", pool.tcp.idle_timeout)
        if pool.http is not None:
            check_duration(found, f"{ppath}.http.idleTimeout", pool.http.idle_timeout)
    if policy.outlier_detection is not None:
        check_outlier(found, f"{path}.outlierDetection", policy.outlier_detection)
    if policy.tls is not None:
        found.info(
            f"{path}.tls", "tls is accepted and has no effect until mutual TLS lands in the lab"
        )
    for k, level in enumerate(policy.port_level_settings):
        lpath = f"{path}.portLevelSettings[{k}]"
        if level.port is None or not level.port.number:
            found.error(f"{lpath}.port", "port.number is required")
        if level.load_balancer is not None:
            check_load_balancer(found, f"{lpath}.loadBalancer", level.load_balancer)
        if level.outlier_detection is not None:
            check_outlier(found, f"{lpath}.outlierDetection", level.outlier_detection)


def check_load_balancer(found: _Findings, path: str, lb: LoadBalancerSettings) -> None:
    if lb.simple is not None and lb.consistent_hash is not None:
        found.error(path, "set simple or consistentHash, not both")
    if lb.simple == "PASSTHROUGH":
        found.info(f"{path}.simple", "PASSTHROUGH is treated as ROUND_ROBIN by the lab")
    if lb.simple == "LEAST_CONN":
        found.warn(
            f"{path}.simple", "LEAST_CONN is deprecated: use LEAST_REQUEST", codes.DEPRECATED
        )
    ch = lb.consistent_hash
    if ch is not None:
        keys = [
            k
            for k, v in (
                ("httpHeaderName", ch.http_header_name),
                ("httpCookie", ch.http_cookie),
                ("useSourceIp", ch.use_source_ip),
                ("httpQueryParameterName", ch.http_query_parameter_name),
            )
            if v
        ]
        if len(keys) != 1:
            found.error(
                f"{path}.consistentHash",
                "set exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
            )
        if ch.http_cookie is not None and not ch.http_cookie.name:
            found.error(f"{path}.consistentHash.httpCookie.name", "cookie name is required")
        if ch.ring_hash is not None and ch.maglev is not None:
            found.error(f"{path}.consistentHash", "set ringHash or maglev, not both")


def check_outlier(found: _Findings, path: str, outlier: OutlierDetection) -> None:
    for name in (
        "consecutive_errors",
        "consecutive_5xx_errors",
        "consecutive_gateway_errors",
        "consecutive_local_origin_failures",
        "max_ejection_percent",
        "min_health_percent",
    ):
        value = getattr(outlier, name)
        if value is not None and value < 0:
            found.error(path, f"{name} cannot be negative (it is {value})")
    for name in ("max_ejection_percent", "min_health_percent"):
        value = getattr(outlier, name)
        if value is not None and value > 100:
            found.error(path, f"{name} must be between 0 and 100 (it is {value})")
    check_duration(found, f"{path}.interval", outlier.interval)
    check_duration(found, f"{path}.baseEjectionTime", outlier.base_ejection_time)
    if outlier.consecutive_errors is not None:
        found.warn(
            f"{path}.consecutiveErrors",
            "consecutiveErrors is deprecated (Istio ≥ 1.7 ignores it); the lab honours it as "
            "consecutive gateway errors (502/503/504) — use consecutive5xxErrors or "
            "consecutiveGatewayErrors",
            codes.DEPRECATED,
        )
    if (
        outlier.consecutive_local_origin_failures is not None
        and not outlier.split_external_local_origin_errors
    ):
        found.error(
            path, "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true"
        )


# ---------------------------------------------------------------- Gateway


def check_gateway(resource: Resource, out: list[Issue]) -> None:
    spec: Gateway = resource.spec
    found = _Findings(resource, out)
    if not spec.servers:
        found.error("servers", "a Gateway needs at least one server")
    port_names: dict[str, int] = {}
    for i, server in enumerate(spec.servers):
        path = f"servers[{i}]"
        port = server.port
        if port is None:
            found.error(f"{path}.port", "port is required")
        else:
            if port.number is None or not 0 < port.number < 65536:
                found.error(f"{path}.port.number", "port number must be between 1 and 65535")
            if not port.protocol:
                found.error(f"{path}.port.protocol", "protocol is required")
            elif port.protocol.upper() not in SERVER_PROTOCOLS:
                found.error(
                    f"{path}.port.protocol",
                    f"unknown protocol {port.protocol!r} (one of {', '.join(SERVER_PROTOCOLS)})",
                )
            elif port.protocol.upper() not in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB"):
                found.info(
                    f"{path}.port.protocol",
                    f"{port.protocol} servers are not served by the lab (HTTP only)",
                )
            if not port.name:
                found.error(f"{path}.port.name", "port name is required")
            elif port.name in port_names:
                found.error(
                    f"{path}.port.name",
                    f"port name {port.name!r} is used twice (servers[{port_names[port.name]}])",
                )
            else:
                port_names[port.name] = i
            protocol = (port.protocol or "").upper()
            if protocol in ("HTTPS", "TLS") and server.tls is None:
                found.error(f"{path}.tls", f"{protocol} servers need tls settings")
            if (
                protocol == "HTTP"
                and server.tls is not None
                and (server.tls.mode is not None or server.tls.credential_name)
            ):
                found.error(f"{path}.tls", "plain HTTP servers may only set tls.httpsRedirect")
        if not server.hosts:
            found.error(f"{path}.hosts", "at least one host is required")
        for k, host in enumerate(server.hosts):
            if not WILDCARD_HOST.match(hostnames.strip_namespace(host)):
                found.error(
                    f"{path}.hosts[{k}]",
                    f"{host!r} is not a valid host (a wildcard only as the left-most label)",
                )


# ---------------------------------------------------------------- cross references


def _default_endpoints() -> list[Endpoint]:
    from mesh.lab.topology import BOOKINFO_PODS, SERVICE_PORT

    return [
        Endpoint(pod.name, pod.service, "127.0.0.1", SERVICE_PORT, pod.labels)
        for pod in BOOKINFO_PODS
    ]


def _known_services(endpoints: Sequence[Endpoint]) -> set[str]:
    from mesh.lab.topology import SERVICES

    return set(SERVICES) | {hostnames.normalize(e.service) for e in endpoints}


def analyze(
    resources: Sequence[Resource],
    endpoints: Sequence[Endpoint] | None = None,
    gateway_labels: Iterable[Mapping[str, str]] | None = None,
) -> list[Issue]:
    """Every finding for these resources, given the pods that exist (or the lab topology)."""
    from mesh.lab.topology import GATEWAY_LABELS

    pods = list(endpoints) if endpoints is not None else _default_endpoints()
    services = _known_services(pods)
    gateway_pods = list(gateway_labels) if gateway_labels is not None else [GATEWAY_LABELS]
    out: list[Issue] = []
    seen: dict[tuple[str, str], Resource] = {}
    for resource in resources:
        key = (resource.kind, resource.name)
        if key in seen:
            first = seen[key]
            out.append(
                resource.issue(
                    "Error",
                    codes.SCHEMA_VALIDATION_ERROR,
                    "",
                    f"{resource.kind} {resource.name!r} is defined twice (first in {first.source.file}:{first.source.line})",
                )
            )
            continue
        seen[key] = resource
        if resource.kind == "VirtualService":
            check_virtual_service(resource, out)
        elif resource.kind == "DestinationRule":
            check_destination_rule(resource, out)
        elif resource.kind == "Gateway":
            check_gateway(resource, out)
    unique = list(seen.values())
    rules = [r for r in unique if r.kind == "DestinationRule"]
    gateways = {r.name: r for r in unique if r.kind == "Gateway"}
    subsets: dict[str, dict[str, Mapping[str, str]]] = {}
    for rule in rules:
        host = hostnames.normalize(rule.spec.host)
        for subset in rule.spec.subsets:
            subsets.setdefault(host, {})[subset.name] = subset.labels
    _check_destination_refs(unique, services, subsets, out)
    _check_gateway_bindings(unique, gateways, out)
    _check_mesh_conflicts(unique, out)
    _check_subsets_select_pods(rules, pods, services, out)
    _check_gateway_selectors(gateways.values(), gateway_pods, out)
    return out


def _check_destination_refs(
    resources: Sequence[Resource],
    services: set[str],
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
            for path, destination in refs:
                if not destination.host:
                    continue
                host = hostnames.normalize(destination.host)
                if host not in services:
                    known = ", ".join(sorted(services))
                    out.append(
                        resource.issue(
                            "Error",
                            codes.REFERENCED_RESOURCE_NOT_FOUND,
                            f"{path}.host",
                            f"host {destination.host!r} is not a known service (known: {known})",
                        )
                    )
                    continue
                if destination.subset and destination.subset not in subsets.get(host, {}):
                    defined = sorted(subsets.get(host, {}))
                    hint = (
                        f"defined subsets: {', '.join(defined)}"
                        if defined
                        else "no DestinationRule defines subsets for it: apply the DestinationRule first, or together"
                    )
                    out.append(
                        resource.issue(
                            "Error",
                            codes.REFERENCED_RESOURCE_NOT_FOUND,
                            f"{path}.subset",
                            f'subset "{destination.subset}" is not defined for host {host} ({hint})',
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
            key = hostnames.gateway_key(name)
            if key == "mesh":
                continue
            path = f"gateways[{i}]" if i < len(spec.gateways) else "http"
            gateway = gateways.get(key)
            if gateway is None:
                out.append(
                    resource.issue(
                        "Error",
                        codes.REFERENCED_RESOURCE_NOT_FOUND,
                        path,
                        f'gateway "{name}" is not defined'
                        + (f" (defined: {', '.join(sorted(gateways))})" if gateways else ""),
                    )
                )
                continue
            server_hosts = [
                hostnames.normalize(hostnames.strip_namespace(h))
                for server in gateway.spec.servers
                for h in server.hosts
            ]
            overlaps = any(
                hostnames.intersect(hostnames.normalize(vs_host), server_host) is not None
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
        bound = [hostnames.gateway_key(g) for g in spec.gateways] or ["mesh"]
        if "mesh" not in bound:
            continue
        for i, host in enumerate(spec.hosts):
            name = hostnames.normalize(host)
            other = owners.get(name)
            if other is not None and other is not resource:
                out.append(
                    resource.issue(
                        "Error",
                        codes.CONFLICTING_MESH_GATEWAY_VS_HOSTS,
                        f"hosts[{i}]",
                        f"host {name} is also routed by VirtualService {other.name} "
                        f"({other.source.file}:{other.source.line}); mesh VirtualServices for one "
                        "host are not merged: keep one",
                    )
                )
            else:
                owners[name] = resource


def _check_subsets_select_pods(
    rules: Sequence[Resource], pods: Sequence[Endpoint], services: set[str], out: list[Issue]
) -> None:
    hosts_seen: dict[str, Resource] = {}
    for resource in rules:
        spec: DestinationRule = resource.spec
        host = hostnames.normalize(spec.host)
        if host.startswith("*"):
            continue
        if host in hosts_seen:
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
            out.append(
                resource.issue(
                    "Warning",
                    codes.UNKNOWN_DR_HOST,
                    "host",
                    f"host {spec.host!r} is not a known service: this DestinationRule has no effect",
                )
            )
            continue
        service_pods = [p for p in pods if hostnames.normalize(p.service) == host]
        for i, subset in enumerate(spec.subsets):
            if not subset.name:
                continue
            if not any(
                all(p.labels.get(k) == v for k, v in subset.labels.items()) for p in service_pods
            ):
                out.append(
                    resource.issue(
                        "Error",
                        codes.SUBSET_SELECTS_NO_PODS,
                        f"subsets[{i}]",
                        f'subset "{subset.name}" (labels {dict(subset.labels)}) selects no pods of '
                        f"{host}: requests routed to it get 503 no healthy upstream (UH)",
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
                key = (key_selector, server.port.number, hostnames.strip_namespace(host))
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
