"""Zipkin v2 spans as Envoy's Zipkin tracer emits them, and the collector's strict parser.

Primitives:

- ``Endpoint``, ``Annotation``, ``Span``: Zipkin v2's model (openzipkin/zipkin-api,
  zipkin2-api.yaml). Times are epoch **microseconds**; ``Span.to_json()`` writes the JSON v2
  shape, leaving out absent fields.
- ``ProxyInfo`` (who reports: Istio's tracing service name ``<app>.<namespace>``, node id,
  address) and ``Exchange`` (what a proxy knows when a request ends).
- ``client_span`` / ``server_span``: the caller's proxy reports a CLIENT span with a new id
  whose parent is the caller's current span; the callee's proxy reports a SERVER span that
  *shares* the client span's id (``shared: true``), as Envoy does with its default
  ``shared_span_context``. Both carry Envoy's tags (``envoy_tags``): ``component: proxy``,
  ``node_id``, ``guid:x-request-id``, ``http.url``, ``http.method``, ``http.protocol``,
  ``downstream_cluster``, ``user_agent``, ``peer.address``, ``request_size``,
  ``response_size``, ``upstream_cluster``, ``upstream_address``, ``http.status_code``,
  ``response_flags``, ``error: true`` on a 5xx or no response, plus Istio's
  ``istio.canonical_service``, ``istio.canonical_revision``, ``istio.namespace``,
  ``istio.mesh_id`` and the lab's ``route_name`` (the VirtualService route that matched).
- ``operation_name(host, port)``: the span name, Istio's route decorator
  (``reviews.default.svc.cluster.local:9080/*``); ``server_operation``: the inbound one,
  named by the Service port (9080) whatever port the pod's proxy listens on.
- ``parse_spans(data)``: a decoded ``POST /api/v2/spans`` body to spans, or ``SpanError``
  naming the first bad field (``spans[3].traceId: ...``). Like Zipkin it lowercases span and
  service names and ignores unknown fields; unlike Zipkin it caps sizes (``LIMITS``) so one
  request cannot hold the collector's memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mesh.telemetry.b3 import TraceContext, is_id

KINDS = ("CLIENT", "SERVER", "PRODUCER", "CONSUMER")
MAX_PATH_TAG_LENGTH = 256  # Envoy's default max_path_tag_length
MESH_ID = "cluster.local"


@dataclass(frozen=True)
class Limits:
    """What one span may hold in the collector."""

    spans_per_request: int = 10_000
    tags: int = 128
    annotations: int = 128
    string: int = 8192


LIMITS = Limits()


class SpanError(ValueError):
    """A span the collector refuses; the message names the field and the reason."""


def _empty_tags() -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class Endpoint:
    service_name: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    port: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.service_name:
            out["serviceName"] = self.service_name
        if self.ipv4:
            out["ipv4"] = self.ipv4
        if self.ipv6:
            out["ipv6"] = self.ipv6
        if self.port:
            out["port"] = self.port
        return out


@dataclass(frozen=True, slots=True)
class Annotation:
    timestamp: int
    value: str


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: str
    id: str
    parent_id: str | None = None
    name: str | None = None
    kind: str | None = None
    timestamp: int | None = None
    duration: int | None = None
    local_endpoint: Endpoint | None = None
    remote_endpoint: Endpoint | None = None
    annotations: tuple[Annotation, ...] = ()
    tags: Mapping[str, str] = field(default_factory=_empty_tags)
    debug: bool = False
    shared: bool = False

    @property
    def service_name(self) -> str | None:
        return self.local_endpoint.service_name if self.local_endpoint else None

    @property
    def end(self) -> int | None:
        if self.timestamp is None:
            return None
        return self.timestamp + (self.duration or 0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"traceId": self.trace_id, "id": self.id}
        if self.parent_id:
            out["parentId"] = self.parent_id
        if self.name:
            out["name"] = self.name
        if self.kind:
            out["kind"] = self.kind
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        if self.duration is not None:
            out["duration"] = self.duration
        if self.local_endpoint is not None:
            out["localEndpoint"] = self.local_endpoint.to_json()
        if self.remote_endpoint is not None:
            out["remoteEndpoint"] = self.remote_endpoint.to_json()
        if self.annotations:
            out["annotations"] = [
                {"timestamp": a.timestamp, "value": a.value} for a in self.annotations
            ]
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.debug:
            out["debug"] = True
        if self.shared:
            out["shared"] = True
        return out


# ---------------------------------------------------------------- what a proxy reports


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """The reporting proxy. ``service_name`` is Istio's tracing service name,
    ``<app>.<namespace>`` (``istio-ingressgateway.istio-system`` for the gateway)."""

    service_name: str
    node_id: str
    ipv4: str | None = None
    port: int | None = None
    canonical_service: str = "unknown"
    canonical_revision: str = "latest"
    namespace: str = "default"

    @classmethod
    def of(
        cls,
        app: str,
        namespace: str,
        pod: str,
        *,
        version: str | None = None,
        ipv4: str | None = None,
        port: int | None = None,
        gateway: bool = False,
    ) -> ProxyInfo:
        """Istio's naming: node id ``<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local``."""
        kind = "router" if gateway else "sidecar"
        return cls(
            service_name=f"{app}.{namespace}",
            node_id=f"{kind}~{ipv4 or '127.0.0.1'}~{pod}.{namespace}~{namespace}.svc.cluster.local",
            ipv4=ipv4,
            port=port,
            canonical_service=app,
            canonical_revision=version or "latest",
            namespace=namespace,
        )

    def endpoint(self) -> Endpoint:
        return Endpoint(self.service_name, self.ipv4, None, self.port)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One finished request as a proxy saw it. ``status`` 0 = no response was sent;
    ``start_us`` is epoch microseconds, ``duration_us`` microseconds."""

    start_us: int
    duration_us: int
    method: str
    url: str
    status: int
    flags: str = ""
    protocol: str = "HTTP/1.1"
    request_id: str | None = None
    user_agent: str | None = None
    downstream_cluster: str | None = None
    peer_address: str | None = None
    request_size: int = 0
    response_size: int = 0
    upstream_cluster: str | None = None
    upstream_address: str | None = None
    route_name: str | None = None


def operation_name(host: str, port: int) -> str:
    """Istio's route decorator: the span name of every request to ``host:port``."""
    return f"{host}:{port}/*"


def server_operation(
    fqdn: str, ports: Iterable[tuple[int, int | None]], container_port: int | None
) -> str | None:
    """The SERVER span's name at a pod of the Service ``fqdn``: Istio's inbound decorator
    (pilot ``buildSidecarInboundHTTPRouteConfig``: ``TraceOperation(hostname, port.Port)``)
    names the *Service* port, not the port the proxy listens on. ``ports``: the Service's
    ``(port, targetPort)`` pairs (targetPort None: the same number); the one whose target is
    ``container_port`` wins, else the Service's first port. None: no ports known."""
    first = None
    for number, target in ports:
        if first is None:
            first = number
        if (target if target is not None else number) == container_port:
            return operation_name(fqdn, number)
    return operation_name(fqdn, first) if first is not None else None


def http_url(scheme: str, authority: str, path: str) -> str:
    """Envoy's ``http.url`` tag: ``scheme://authority/path``, the path cut at 256 characters."""
    return f"{scheme}://{authority}{path[:MAX_PATH_TAG_LENGTH]}"


def envoy_tags(proxy: ProxyInfo, ex: Exchange) -> dict[str, str]:
    """The tags Envoy's HTTP connection manager and Istio put on a proxy's span
    (Envoy skips empty values, so do we)."""
    tags = {
        "component": "proxy",
        "node_id": proxy.node_id,
        "http.url": ex.url,
        "http.method": ex.method,
        "http.protocol": ex.protocol,
        "downstream_cluster": ex.downstream_cluster or "-",
        "user_agent": ex.user_agent or "-",
        "request_size": str(ex.request_size),
        "response_size": str(ex.response_size),
        "http.status_code": str(ex.status),
        "response_flags": ex.flags or "-",
        "istio.canonical_service": proxy.canonical_service,
        "istio.canonical_revision": proxy.canonical_revision,
        "istio.namespace": proxy.namespace,
        "istio.mesh_id": MESH_ID,
    }
    if ex.request_id:
        tags["guid:x-request-id"] = ex.request_id
    if ex.peer_address:
        tags["peer.address"] = ex.peer_address
    if ex.upstream_cluster:
        tags["upstream_cluster"] = ex.upstream_cluster
    if ex.upstream_address:
        tags["upstream_address"] = ex.upstream_address
    if ex.route_name:
        tags["route_name"] = ex.route_name
    if ex.status == 0 or 500 <= ex.status <= 599:
        tags["error"] = "true"
    return tags


def proxy_span(
    kind: str, ctx: TraceContext, proxy: ProxyInfo, ex: Exchange, name: str, *, shared: bool = False
) -> Span:
    """A proxy's span of one request: ``ctx`` says which span it is (its id and parent)."""
    return Span(
        trace_id=ctx.trace_id,
        id=ctx.span_id,
        parent_id=ctx.parent_id,
        name=name.lower(),
        kind=kind,
        timestamp=ex.start_us,
        duration=max(1, ex.duration_us),  # Zipkin: durations under one are rounded up
        local_endpoint=proxy.endpoint(),
        tags=envoy_tags(proxy, ex),
        debug=ctx.debug,
        shared=shared,
    )


def client_span(ctx: TraceContext, proxy: ProxyInfo, ex: Exchange, name: str) -> Span:
    """The caller's proxy: ``ctx`` is the child context it made (``b3.child``) and sent up."""
    return proxy_span("CLIENT", ctx, proxy, ex, name)


def server_span(
    ctx: TraceContext, proxy: ProxyInfo, ex: Exchange, name: str, *, shared: bool = True
) -> Span:
    """The callee's proxy: ``ctx`` is the context the request arrived with (the caller's
    client span, whose id this span shares), or a new root (``shared=False``)."""
    return proxy_span("SERVER", ctx, proxy, ex, name, shared=shared)


# ---------------------------------------------------------------- the collector's parser


def _string(value: Any, where: str, limits: Limits) -> str:
    if not isinstance(value, str):
        raise SpanError(f"{where}: expected a string, got {type(value).__name__}")
    if len(value) > limits.string:
        raise SpanError(f"{where}: longer than {limits.string} characters")
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpanError(f"{where}: expected an integer, got {type(value).__name__}")
    if value < 0:
        raise SpanError(f"{where}: must not be negative")
    return value


def _hex_id(value: Any, where: str, lengths: tuple[int, ...]) -> str:
    text = _string(value, where, LIMITS).lower()
    if not is_id(text, lengths):
        sizes = " or ".join(str(n) for n in lengths)
        raise SpanError(f"{where}: expected {sizes} hex characters (not all zeros), got {value!r}")
    return text


def _endpoint(value: Any, where: str, limits: Limits) -> Endpoint:
    if not isinstance(value, Mapping):
        raise SpanError(f"{where}: expected an object")
    name = value.get("serviceName")
    port = value.get("port")
    if port is not None:
        port = _integer(port, f"{where}.port")
        if port > 65535:
            raise SpanError(f"{where}.port: {port} is not a port")
    ipv4 = value.get("ipv4")
    ipv6 = value.get("ipv6")
    return Endpoint(
        _string(name, f"{where}.serviceName", limits).lower() if name is not None else None,
        _string(ipv4, f"{where}.ipv4", limits) if ipv4 is not None else None,
        _string(ipv6, f"{where}.ipv6", limits) if ipv6 is not None else None,
        port or None,
    )


def parse_span(value: Any, where: str = "span", limits: Limits = LIMITS) -> Span:
    if not isinstance(value, Mapping):
        raise SpanError(f"{where}: expected an object, got {type(value).__name__}")
    if "traceId" not in value:
        raise SpanError(f"{where}.traceId: required")
    if "id" not in value:
        raise SpanError(f"{where}.id: required")
    trace_id = _hex_id(value["traceId"], f"{where}.traceId", (16, 32))
    span_id = _hex_id(value["id"], f"{where}.id", (16,))
    parent = value.get("parentId")
    parent_id = _hex_id(parent, f"{where}.parentId", (16,)) if parent is not None else None
    kind = value.get("kind")
    if kind is not None and kind not in KINDS:
        raise SpanError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    name = value.get("name")
    timestamp = value.get("timestamp")
    duration = value.get("duration")
    tags_in = value.get("tags") or {}
    if not isinstance(tags_in, Mapping):
        raise SpanError(f"{where}.tags: expected an object of strings")
    if len(tags_in) > limits.tags:
        raise SpanError(f"{where}.tags: more than {limits.tags} tags")
    tags = {
        _string(k, f"{where}.tags key", limits): _string(v, f"{where}.tags[{k!r}]", limits)
        for k, v in tags_in.items()
    }
    annotations_in = value.get("annotations") or []
    if not isinstance(annotations_in, list):
        raise SpanError(f"{where}.annotations: expected a list")
    if len(annotations_in) > limits.annotations:
        raise SpanError(f"{where}.annotations: more than {limits.annotations}")
    annotations = []
    for i, a in enumerate(annotations_in):
        at = f"{where}.annotations[{i}]"
        if not isinstance(a, Mapping) or "timestamp" not in a or "value" not in a:
            raise SpanError(f"{at}: expected {{timestamp, value}}")
        annotations.append(
            Annotation(
                _integer(a["timestamp"], f"{at}.timestamp"),
                _string(a["value"], f"{at}.value", limits),
            )
        )
    for flag in ("debug", "shared"):
        if flag in value and not isinstance(value[flag], bool):
            raise SpanError(f"{where}.{flag}: expected true or false")
    local = value.get("localEndpoint")
    remote = value.get("remoteEndpoint")
    duration_us = _integer(duration, f"{where}.duration") if duration is not None else None
    return Span(
        trace_id=trace_id,
        id=span_id,
        parent_id=parent_id,
        name=_string(name, f"{where}.name", limits).lower() if name is not None else None,
        kind=kind,
        timestamp=_integer(timestamp, f"{where}.timestamp") if timestamp is not None else None,
        # Zipkin: "durations of less than one are rounded up"; 0 means unknown.
        duration=duration_us if duration_us else None,
        local_endpoint=_endpoint(local, f"{where}.localEndpoint", limits)
        if local is not None
        else None,
        remote_endpoint=_endpoint(remote, f"{where}.remoteEndpoint", limits)
        if remote is not None
        else None,
        annotations=tuple(annotations),
        tags=tags,
        debug=bool(value.get("debug", False)),
        shared=bool(value.get("shared", False)),
    )


def parse_spans(data: Any, limits: Limits = LIMITS) -> list[Span]:
    """A decoded ``POST /api/v2/spans`` body (a JSON array) to spans; ``SpanError`` on the
    first bad span. Nothing is kept from a request with one bad span (all or nothing)."""
    if not isinstance(data, list):
        raise SpanError(f"expected a JSON array of spans, got {type(data).__name__}")
    if len(data) > limits.spans_per_request:
        raise SpanError(f"more than {limits.spans_per_request} spans in one request")
    return [parse_span(item, f"spans[{i}]", limits) for i, item in enumerate(data)]
