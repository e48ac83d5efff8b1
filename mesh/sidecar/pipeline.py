"""The sidecar's request pipeline: every stage, in order, listed once (``start_routed``,
``start_inbound``); the stages' parts live beside it: ``forwarding`` (headers and head sent
upstream), ``flight`` (stages 3-7: checks, tries, commit), ``mirror`` (stage 8), ``replies``
(every local reply), ``mesh.resilience.verdict`` (the pure per-try decision).

Routed traffic (the outbound listener, and every listener of a gateway)::

    1. view     RequestView from the head (host and port from the absolute-form URI, else Host)
    2. decide   routing engine -> LocalReply (404 NR, redirect, direct response) | Forward
    3. fault    injected delay (DI), then injected abort (FI, "fault filter abort"); an
                injected fault never reaches an upstream, is never retried, is not counted
                by outlier detection
    4. cluster  a subset no DestinationRule defines -> 503 NC
    5. admit    connectionPool limits -> 503 UO at once, with x-envoy-overloaded: true
    6. try      loop { pick an endpoint that is not ejected (none -> 503 UH)
                       -> forward with the per-try timeout
                       -> outcome to the cluster's outlier detector
                       -> retry per retryOn, after back-off, on another host }
                until done or attempts exhausted (URX); the route timeout bounds the whole
                loop and the response body (504 UT)
    7. respond  response header operations (and CORS headers; a CORS preflight from an
                allowed origin was answered at stage 2), then the body streams to the client
    8. mirror   fire-and-forget copies, Host "<host>-shadow", responses discarded

Inbound traffic (the pod's service port): forward to the local app, no routing (the
caller's sidecar already decided), local failures -> 503 UF / 504 UT.

A request reads ``runtime.table`` once, at stage 2, and keeps that table (and its clusters'
state) to the end: a config swap never changes a request in flight.

Request bodies for retries: up to ``REPLAY_LIMIT`` bytes are kept so that a retry (and a
mirror) can resend them; a bigger body streams through once and disables further tries for
that request (the answer of the one try is returned as it is).
"""

from __future__ import annotations

from typing import Any

import httptools

from mesh.routing import decide
from mesh.routing.decision import Forward, LocalReply, RequestView
from mesh.routing.paths import needs_normalizing, normalize_path
from mesh.sidecar import cors, replies
from mesh.sidecar.flight import ADMITTED, WAIT, Flight
from mesh.sidecar.forwarding import (
    added_headers,
    edge_headers,
    local_reply,
    request_head,
)
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.runtime import Runtime
from mesh.telemetry.istio import PEER_HEADERS, PEER_METADATA, PEER_METADATA_ID

PEER_HEADER_BYTES = frozenset(h.encode("latin-1") for h in PEER_HEADERS)

XFCC_HEADER = "x-forwarded-client-cert"


def strip_xfcc(ex: Exchange) -> None:
    del ex.hdict[XFCC_HEADER]
    ex.headers = [(n, v) for n, v in ex.headers if n != b"x-forwarded-client-cert"]


# --- stage 1: the request as the router sees it ----------------------------------------------


def split_authority(authority: str, default_port: int) -> tuple[str, int]:
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host, int(port)
    return authority, default_port


def request_view(ex: Exchange, port: int | None, absolute: bool = True) -> RequestView | None:
    """Host, port and path of ``ex``. An absolute-form target (``GET http://reviews:9080/x``,
    what the app's HTTP_PROXY client sends to the outbound listener) wins over Host, as
    RFC 9112 3.2.2 says; ``port`` (a gateway's server port) overrides the addressed one.

    The path is normalised as Istio's default does (``mesh.routing.paths``) before anything
    matches on it, and goes upstream so; None when it cannot be (Envoy's 400)."""
    url = ex.url
    authority = ex.hdict.get("host", "")
    if absolute and url[:1] != b"/":
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            parsed = None
        if parsed is not None and parsed.host:
            authority = parsed.host.decode("latin-1")
            if parsed.port:
                authority = f"{authority}:{parsed.port}"
            path = (parsed.path or b"/").decode("latin-1")
            if parsed.query:
                path = f"{path}?{parsed.query.decode('latin-1')}"
        else:
            path = url.decode("latin-1")
    else:
        path = url.decode("latin-1")
    if needs_normalizing(path):
        path = normalize_path(path)  # type: ignore[assignment]
        if path is None:
            return None
    ex.authority = authority
    host, addressed_port = split_authority(authority, 80)
    view: RequestView = _new_view(
        host, path, ex.method, ex.hdict, "http", addressed_port if port is None else port,
        ex.conn.peer,
    )  # fmt: skip
    return view


def _view_builder() -> Any:
    """``RequestView(host, path, method, headers, scheme, port, source_address)`` without
    the frozen dataclass's ``__init__`` (one ``object.__setattr__`` call per field, ~1 µs a
    request): the slots are filled through their descriptors. Falls back to the constructor
    if the class does not have exactly these slots."""
    names = ("host", "path", "method", "headers", "scheme", "port", "source_address")
    if getattr(RequestView, "__slots__", None) != names or hasattr(RequestView, "__post_init__"):
        return lambda *values: RequestView(*values)
    new = object.__new__
    cls = RequestView
    s_host, s_path, s_method, s_headers, s_scheme, s_port, s_src = (
        getattr(RequestView, n).__set__ for n in names
    )

    def build(host, path, method, headers, scheme, port, source_address):  # type: ignore[no-untyped-def]
        view = new(cls)
        s_host(view, host)
        s_path(view, path)
        s_method(view, method)
        s_headers(view, headers)
        s_scheme(view, scheme)
        s_port(view, port)
        s_src(view, source_address)
        return view

    return build


_new_view = _view_builder()


# --- the routed pipeline -----------------------------------------------------------------------


def start_routed(rt: Runtime, ex: Exchange, server_port: int | None, edge: bool) -> None:
    """Stages 1-8 for one request (outbound: ``server_port`` None; gateway: its server port).

    Synchronous on purpose: the common request (no injected delay, no timeouts, a slot free,
    a pooled connection at hand) is sent upstream right here, and its response is committed
    from the upstream connection's callbacks (``Flight.on_response``), with no task and no
    future. Anything that has to wait (a delay, a timeout, a pending-queue slot, a new
    connection, a retry) continues in a coroutine (``Flight.run_routed`` / ``run_tries``)
    from where it stands.
    """
    table = rt.table
    states = rt.states
    if ex.finished:  # answered already (a broken request body)
        return
    if table is None:
        replies.send(ex, replies.NO_HEALTHY_UPSTREAM)
        return
    # 1. view
    if edge:
        extra = edge_headers(ex)
    elif rt.kube_proxy:
        extra = []  # no sidecar: kube-proxy forwards the app's request as it is
    else:
        extra = added_headers(ex, False)
        if XFCC_HEADER in ex.hdict:
            # Envoy's default (SANITIZE) on the sidecar's outbound listener: an app's
            # X-Forwarded-Client-Cert never leaves its pod (the gateway's is in ``edge_headers``).
            strip_xfcc(ex)
        if PEER_METADATA in ex.hdict or PEER_METADATA_ID in ex.hdict:
            strip_peer_headers(ex)  # the app's own copy: the proxy speaks for its workload
    # Metadata exchange: who is calling, for the destination's source_* labels.
    extra += rt.peer_lines
    tracer = rt.tracer
    if tracer is not None:
        extra += tracer.outbound(ex)
    view = request_view(ex, server_port)
    if view is None:
        replies.send(ex, replies.BAD_PATH)  # Envoy: 400, the connection kept
        return
    if edge and rt.security is not None and rt.security.policies:
        # AuthorizationPolicies that select the ingress gateway, before routing (Envoy's
        # RBAC filter precedes the router).
        if rt.security.edge(ex, view.path, view.host, server_port) is not None:
            replies.send(ex, replies.RBAC_DENIED)
            return
    # 2. decide
    decision = decide(table, view, rt.rng)
    if isinstance(decision, LocalReply):
        local_reply(ex, decision)
        return
    fwd: Forward = decision
    ex.route = fwd
    cluster = fwd.cluster
    ex.cluster_name = cluster.name
    if fwd.cors is not None and "origin" in ex.hdict:
        answer = cors.decide_preflight(fwd.cors, ex.method, ex.hdict)
        if answer is not None:
            ex.reply(200, b"", "", answer)
            return
    flight = Flight(rt, ex, states.get(cluster.name), view, fwd, extra)
    if "x-envoy-upstream-rq-timeout-ms" in ex.hdict:
        flight.timeout = route_timeout(fwd.timeout, ex.hdict)
    if fwd.fault_delay is not None or flight.timeout or fwd.retry.per_try_timeout:
        flight.spawn(flight.run_routed())
        return
    # 3. fault (abort), 4. cluster, 5. admit
    checked = flight.pre_checks()
    if checked is not ADMITTED:
        if checked is WAIT:
            flight.spawn(flight.run_routed())
        return
    # 6. first try, if a pooled connection is at hand
    try:
        flight.first_try()
    except BaseException:
        flight.end()  # a bug must not leak the admission slot
        raise


def strip_peer_headers(ex: Exchange) -> None:
    """Drop Istio's metadata-exchange headers from the request."""
    ex.headers = [(n, v) for n, v in ex.headers if n not in PEER_HEADER_BYTES]
    hdict = ex.hdict
    hdict.pop(PEER_METADATA, None)
    hdict.pop(PEER_METADATA_ID, None)


def route_timeout(configured: float | None, headers: dict[str, str]) -> float | None:
    """The route ``timeout``, or Envoy's per-request ``x-envoy-upstream-rq-timeout-ms``
    override when the request carries a valid one (0 = no timeout)."""
    raw = headers.get("x-envoy-upstream-rq-timeout-ms")
    if raw is None:
        return configured
    try:
        ms = int(raw)
    except ValueError:
        return configured
    if ms < 0:
        return configured
    return ms / 1000.0 if ms else None


# --- inbound ----------------------------------------------------------------------------------


def start_inbound(rt: Runtime, ex: Exchange) -> None:
    """Forward to the local app: one try, no routing; synchronous when a pooled connection
    to the app is at hand."""
    if ex.finished:
        return
    hdict = ex.hdict
    metadata = hdict.get(PEER_METADATA)
    ex.labels = rt.telemetry.inbound_prefix(metadata, ex.mtls)
    if metadata is not None or PEER_METADATA_ID in hdict:
        strip_peer_headers(ex)  # metadata exchange is between proxies: never to the app
    extra = added_headers(ex, True)
    tracer = rt.tracer
    if tracer is not None:
        extra += tracer.inbound(ex)
    url = ex.url
    if url[:1] != b"/":
        view = request_view(ex, None, absolute=True)
        if view is None:
            replies.send(ex, replies.BAD_PATH)
            return
        path, authority = view.path, ex.authority
    else:
        path = url.decode("latin-1")
        if needs_normalizing(path):
            normal = normalize_path(path)
            if normal is None:
                replies.send(ex, replies.BAD_PATH)
                return
            path = normal
        authority = ex.hdict.get("host", "")
        ex.authority = authority
    ex.upstream_host = rt.app_key
    ex.cluster_name = "inbound"
    if rt.security is not None:
        # mTLS facts, X-Forwarded-Client-Cert, then AuthorizationPolicy, before the app.
        denied = rt.security.inbound(ex, path, authority) is not None
        if ex.mtls:  # the destination's connection_security_policy: mutual_tls
            ex.labels = rt.telemetry.inbound_prefix(metadata, True)
        if denied:
            replies.send(ex, replies.RBAC_DENIED)
            return
    elif XFCC_HEADER in ex.hdict:
        strip_xfcc(ex)  # plaintext: a client cannot forge its certificate's details
    if rt.app_port is None:
        replies.send(ex, replies.NO_HEALTHY_UPSTREAM)
        return
    flight = Flight(rt, ex, None, None, None, extra)
    flight.head = request_head(ex, ex.method, path, authority, ex.upstream_headers(extra))
    conn = rt.pool.take_idle(rt.app_key)
    if conn is None:
        flight.spawn(flight.run_tries(rt.app))
        return
    flight.send_on(conn, rt.app)
