"""``decide(table, request, rng)``: the routing decision for one request, pure.

Order of evaluation, as Envoy's HTTP connection manager with Istio's routes:
1. pick the virtual host by Host (gateway: on the listener's port) — none ⇒ 404 NR;
2. the first rule whose match holds (OR across entries, AND within) — none ⇒ 404 NR;
3. that rule's action: redirect or direct response ⇒ a ``LocalReply``; otherwise pick a
   destination (smooth weighted round-robin), roll the fault, roll the mirrors, apply the
   rewrite, and answer ``Forward``.
"""

from __future__ import annotations

import random

from mesh.config import hosts as hostnames
from mesh.resilience.fault import roll
from mesh.routing.decision import Cluster, Forward, LocalReply, RequestView
from mesh.routing.match import split_path
from mesh.routing.routes import MEMO_LIMIT, CompiledRule, RouteTable, VirtualHost

# Longest Host or path echoed in a no-route body: enough to recognise, bounded whatever a
# client sends.
NO_ROUTE_ECHO = 120
NO_ROUTE_HOSTS = 12  # hosts listed, the rest counted


def decide(table: RouteTable, request: RequestView, rng: random.Random) -> Forward | LocalReply:
    """Route one request. ``rng`` drives fault and mirror rolls (and nothing else)."""
    vhost = table.vhost_for(request.host, request.port)
    if vhost is None:
        return no_route(table, request, None)
    path, _ = split_path(request.path)
    context: dict[str, object] = {}  # per-request memo: header regex-set scans, parsed query
    for rule, matchers in vhost.plan(request.headers):
        if not matchers:  # a rule without matchers (a plan drops rules none of whose can hold)
            return _act(rule, request, path, None, rng)
        for matcher in matchers:
            if matcher.test(request, path, context):
                return _act(rule, request, path, matcher.uri_prefix, rng)
    return no_route(table, request, vhost)


def no_route(table: RouteTable, request: RequestView, vhost: VirtualHost | None) -> LocalReply:
    """Envoy's 404 with flag NR, and (a lab addition: Envoy's body is empty) a short text
    naming the Host and path that had no route and the hosts this proxy serves, so a
    trainee who opens ``localhost:8080`` during blue/green reads why instead of a blank page.
    Built only on a miss: the routed path never pays for it."""
    host, path = _shown(request.host), _shown(request.path)
    routes = table.routes_for(request.port)
    where = f"port {request.port}" if table.proxy.gateway else "this sidecar"
    if vhost is not None:
        rules = ", ".join(sorted({r.virtual_service for r in vhost.rules if r.virtual_service}))
        reason = f"no rule of {'VirtualService ' + rules if rules else 'its routes'} matches"
        head = f'no route: Host "{host}" is served on {where}, but {reason} path "{path}".'
    elif routes is None:
        ports = ", ".join(str(p) for p in table.gateway_ports) or "none"
        head = f"no route: this gateway has no server on port {request.port} (ports: {ports})."
    else:
        head = f'no route: Host "{host}" (path "{path}") matches no host served on {where}.'
    lines = [head]
    if routes is not None:
        hosts = [h if h != "*" else "* (any host)" for h in routes.served_hosts()]
        if len(hosts) > NO_ROUTE_HOSTS:
            hosts = [*hosts[:NO_ROUTE_HOSTS], f"and {len(hosts) - NO_ROUTE_HOSTS} more"]
        lines.append(
            f"Hosts served: {', '.join(hosts) or 'none (no VirtualService is bound here)'}"
        )
    return LocalReply(404, ("\n".join(lines) + "\n").encode("utf-8", "replace"), "NR")


def _shown(text: str) -> str:
    """A client's Host or path as echoed back: printable characters only, bounded."""
    clipped = text if len(text) <= NO_ROUTE_ECHO else text[:NO_ROUTE_ECHO] + "..."
    return "".join(c if c.isprintable() else "?" for c in clipped)


def _act(
    rule: CompiledRule,
    request: RequestView,
    path: str,
    matched_prefix: str | None,
    rng: random.Random,
) -> Forward | LocalReply:
    route = rule.route
    if route.redirect is not None:
        return _redirect(rule, request, path)
    if route.direct_response is not None:
        return LocalReply(
            route.direct_response.status or 200,
            rule.direct_body,
            "",
            (),
            rule.virtual_service,
            rule.name,
            rule.index,
            rule.response_headers,
        )
    if not rule.targets:
        return LocalReply(404, b"", "NR", (), rule.virtual_service, rule.name, rule.index)
    index = rule.picker.pick() if rule.picker is not None else 0
    if route.fault is None and not rule.mirrors:
        # Nothing to roll: the answer depends on the request only through its path and
        # authority, so it is built once per (destination, path, authority) and kept.
        key = (index, request.path, request.host, matched_prefix)
        forwards = rule.forwards
        forward = forwards.get(key)
        if forward is not None:
            return forward
        if len(forwards) >= MEMO_LIMIT:
            forwards.clear()
        forward = _forward(rule, index, request, path, matched_prefix, None, None, ())
        forwards[key] = forward
        return forward
    delay, abort = roll(route.fault, rng)
    mirrors = tuple(
        cluster for cluster, fraction in rule.mirrors if fraction >= 1.0 or rng.random() < fraction
    )
    return _forward(rule, index, request, path, matched_prefix, delay, abort, mirrors)


def _forward(
    rule: CompiledRule,
    index: int,
    request: RequestView,
    path: str,
    matched_prefix: str | None,
    delay: float | None,
    abort: int | None,
    mirrors: tuple[Cluster, ...],
) -> Forward:
    route = rule.route
    target = rule.targets[index]
    target_path = _rewrite_path(rule, request.path, path, matched_prefix)
    authority = request.host
    rewrite = route.rewrite
    if rewrite is not None and rewrite.authority:
        authority = rewrite.authority
    request_ops = target.request_headers
    for name, value in request_ops.set:
        if name in ("host", ":authority"):
            authority = value
    return Forward(
        cluster=target.cluster,
        virtual_service=rule.virtual_service or None,
        route_name=rule.name,
        rule_index=rule.index,
        path=target_path,
        authority=authority,
        timeout=route.timeout,
        retry=rule.retry,
        fault_delay=delay,
        fault_abort=abort,
        mirrors=mirrors,
        request_headers=request_ops,
        response_headers=target.response_headers,
        cors=route.cors_policy,
    )


def _rewrite_path(rule: CompiledRule, target: str, path: str, matched_prefix: str | None) -> str:
    rewrite = rule.route.rewrite
    if rewrite is None:
        return target
    query = target[len(path) :]  # "" or "?..."
    if rewrite.uri is not None:
        if matched_prefix is not None:
            # Replace the matched prefix only; "/" + "/x" must not become "//x".
            rest = path[len(matched_prefix) :]
            new_path = rewrite.uri + rest
            if rewrite.uri.endswith("/") and rest.startswith("/"):
                new_path = rewrite.uri + rest[1:]
            return (new_path or "/") + query
        return rewrite.uri + query
    if rule.uri_regex is not None and rewrite.uri_regex_rewrite is not None:
        substitution = rewrite.uri_regex_rewrite.rewrite
        rewritten: str = rule.uri_regex.sub(substitution, path)
        return rewritten + query
    return target


def _redirect(rule: CompiledRule, request: RequestView, path: str) -> LocalReply:
    redirect = rule.route.redirect
    assert redirect is not None
    request_host, request_port = hostnames.split_host_port(request.host)
    scheme = redirect.scheme or request.scheme
    host = redirect.authority or request_host
    port: int | None = None
    if redirect.port:
        port = redirect.port
    elif redirect.derive_port == "FROM_REQUEST_PORT":
        port = request_port or request.port
    elif redirect.derive_port is None and not redirect.authority:
        port = request_port
    default_port = 443 if scheme == "https" else 80
    authority = host if port in (None, default_port) else f"{host}:{port}"
    query = request.path[len(path) :]
    location = f"{scheme}://{authority}{redirect.uri if redirect.uri is not None else path}{query}"
    return LocalReply(
        redirect.redirect_code or 301,
        b"",
        "",
        (("location", location),),
        rule.virtual_service,
        rule.name,
        rule.index,
        rule.response_headers,
    )
