"""Istio's standard request metrics: names, label names and values, buckets.

Facts (istio.io "Istio Standard Metrics"; real proxies' ``/stats/prometheus``):

- every request is reported twice: ``reporter="source"`` by the caller's proxy and
  ``reporter="destination"`` by the callee's; an ingress gateway reports as the source;
- an unknown value is ``unknown``; ``response_flags`` is ``-`` when no flag is set;
  ``grpc_response_status`` is empty for plain HTTP; ``connection_security_policy`` is
  ``mutual_tls`` or ``none`` as the destination saw it, and ``unknown`` from the source;
- ``destination_service`` is the FQDN (``reviews.default.svc.cluster.local``), ``*_cluster`` the
  cluster id (``Kubernetes`` in a default install), canonical revision ``latest`` when a pod has
  no version label;
- histograms use Envoy's default buckets (Istio configures none of its own by default).

Primitives: ``Peer`` (one side of a request as Istio's peer metadata describes it),
``Service`` (the destination service), ``label_prefix`` (the per-connection part of a key,
computed once and cached by the proxy) and ``request_key`` (the per-response part added).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass

from mesh.telemetry.exposition import Family, RequestMetrics

UNKNOWN = "unknown"
NO_FLAGS = "-"
SOURCE = "source"
DESTINATION = "destination"
MUTUAL_TLS = "mutual_tls"
PLAINTEXT = "none"
DEFAULT_CLUSTER = "Kubernetes"
TRUST_DOMAIN = "cluster.local"
HTTP = "http"

REQUESTS_TOTAL = Family("istio_requests_total", "Requests processed by an Istio proxy.")
REQUEST_DURATION = Family(
    "istio_request_duration_milliseconds", "Duration of requests, in milliseconds."
)
REQUEST_BYTES = Family("istio_request_bytes", "Size of HTTP request bodies, in bytes.")
RESPONSE_BYTES = Family("istio_response_bytes", "Size of HTTP response bodies, in bytes.")

# Envoy's default histogram buckets (stats_config without histogram_bucket_settings), which
# Istio's proxies use for all three histograms.
BUCKETS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)  # fmt: skip

PEER_FIELDS = (
    "workload",
    "workload_namespace",
    "principal",
    "app",
    "version",
    "cluster",
    "canonical_service",
    "canonical_revision",
)
LABELS: tuple[str, ...] = (
    "reporter",
    *(f"source_{f}" for f in PEER_FIELDS),
    *(f"destination_{f}" for f in PEER_FIELDS),
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)
# Where the per-response values start in a key (``request_key`` appends them).
RESPONSE_LABELS_AT = LABELS.index("response_code")

# Envoy's response flags a trainee meets in the lab, with the words the console shows.
RESPONSE_FLAGS: dict[str, str] = {
    "FI": "fault injected: abort",
    "DI": "fault injected: delay",
    "UH": "no healthy upstream",
    "UO": "upstream overflow (circuit breaker)",
    "URX": "retry limit exceeded",
    "UF": "upstream connection failure",
    "UT": "upstream request timeout",
    "UC": "upstream connection termination",
    "UR": "upstream remote reset",
    "NR": "no route",
    "NC": "no cluster (undefined subset)",
    "DC": "downstream connection termination",
    "LR": "local reset",
    "RL": "rate limited",
    "UAEX": "unauthorized (external authorization)",
}

CANONICAL_NAME_LABEL = "service.istio.io/canonical-name"
CANONICAL_REVISION_LABEL = "service.istio.io/canonical-revision"


def principal(namespace: str, service_account: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """A workload's SPIFFE identity as Istio's metrics show it."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def value(text: str | None) -> str:
    """``unknown`` for a missing or empty value."""
    return text if text else UNKNOWN


@dataclass(frozen=True, slots=True)
class Peer:
    """One side of a request: the workload and what its pod labels say."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    principal: str = UNKNOWN
    cluster: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = UNKNOWN

    @classmethod
    def of_pod(
        cls,
        workload: str,
        namespace: str,
        labels: Mapping[str, str],
        *,
        principal: str = UNKNOWN,
        cluster: str = DEFAULT_CLUSTER,
    ) -> Peer:
        """Istio's peer metadata of a pod: canonical service from the canonical-name label,
        else ``app``, else the workload; canonical revision from its label, else ``version``,
        else ``latest``."""
        app = labels.get("app") or labels.get("app.kubernetes.io/name")
        version = labels.get("version") or labels.get("app.kubernetes.io/version")
        return cls(
            workload=value(workload),
            namespace=value(namespace),
            app=value(app),
            version=value(version),
            principal=value(principal),
            cluster=value(cluster),
            canonical_service=labels.get(CANONICAL_NAME_LABEL) or app or value(workload),
            canonical_revision=labels.get(CANONICAL_REVISION_LABEL) or version or "latest",
        )

    def labels(self) -> tuple[str, ...]:
        """The values in ``PEER_FIELDS`` order."""
        return (
            self.workload,
            self.namespace,
            self.principal,
            self.app,
            self.version,
            self.cluster,
            self.canonical_service,
            self.canonical_revision,
        )


UNKNOWN_PEER = Peer()


@dataclass(frozen=True, slots=True)
class Service:
    """The destination service: FQDN, short name and namespace."""

    host: str = UNKNOWN
    name: str = UNKNOWN
    namespace: str = UNKNOWN

    @classmethod
    def of(cls, name: str, namespace: str) -> Service:
        return cls(fqdn(name, namespace), name, namespace)

    @classmethod
    def outside(cls, host: str) -> Service:
        """A host the mesh does not know (Istio: service = the host, namespace unknown)."""
        return cls(value(host), value(host), UNKNOWN)

    def labels(self) -> tuple[str, str, str]:
        return (self.host, self.name, self.namespace)


def label_prefix(
    reporter: str, source: Peer, destination: Peer, service: Service, protocol: str = HTTP
) -> tuple[str, ...]:
    """Every label value up to ``request_protocol``: fixed for a peer pair, so a proxy builds
    it once per upstream endpoint (or downstream peer) and reuses it for every request."""
    if reporter not in (SOURCE, DESTINATION):
        raise ValueError(f"reporter must be {SOURCE!r} or {DESTINATION!r}, not {reporter!r}")
    return (reporter, *source.labels(), *destination.labels(), *service.labels(), protocol)


def request_key(
    prefix: tuple[str, ...],
    response_code: int | str,
    response_flags: str = "",
    connection_security_policy: str = UNKNOWN,
    grpc_response_status: str = "",
) -> tuple[str, ...]:
    """The full label tuple of one request. ``response_code`` 0 = no response was sent."""
    return (
        *prefix,
        str(response_code),
        grpc_response_status,
        response_flags or NO_FLAGS,
        connection_security_policy,
    )


def new_request_metrics() -> RequestMetrics:
    """The four standard families with Istio's labels and buckets: call
    ``record(key, duration_ms, request_bytes, response_bytes)`` once per request."""
    return RequestMetrics(
        REQUESTS_TOTAL, (REQUEST_DURATION, REQUEST_BYTES, RESPONSE_BYTES), LABELS, BUCKETS
    )


def service_of_host(host: str) -> Service:
    """The destination service of a cluster's host: a Kubernetes FQDN
    (``name.namespace.svc.cluster.local``) gives name and namespace, any other host is
    outside the mesh's registry (``Service.outside``)."""
    suffix = ".svc.cluster.local"
    if host.endswith(suffix):
        name, _, namespace = host[: -len(suffix)].partition(".")
        if name and namespace and "." not in namespace:
            return Service(host, name, namespace)
    return Service.outside(host)


# --- metadata exchange ------------------------------------------------------------------
#
# Istio's client proxy tells the server proxy who is calling with two request headers (and
# the server answers the same way): ``x-envoy-peer-metadata-id`` (the proxy's node id) and
# ``x-envoy-peer-metadata`` (its workload metadata, base64). Istio serialises a protobuf
# ``Struct``; the lab's proxies put the same keys (``WORKLOAD_NAME``, ``NAMESPACE``,
# ``LABELS``, ``CLUSTER_ID``, ``SERVICE_ACCOUNT``) in base64 JSON. The server proxy strips
# both before the app sees the request; an ingress gateway drops any a client sent.

PEER_METADATA = "x-envoy-peer-metadata"
PEER_METADATA_ID = "x-envoy-peer-metadata-id"
PEER_HEADERS = (PEER_METADATA, PEER_METADATA_ID)
# Longer values are not decoded (a peer's metadata is a few hundred bytes).
MAX_PEER_METADATA = 4096


def node_id(kind: str, address: str, pod: str, namespace: str) -> str:
    """Envoy's node id as Istio builds it: ``sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local``."""
    return f"{kind}~{address}~{pod}.{namespace}~{namespace}.svc.cluster.local"


def encode_peer(
    workload: str,
    namespace: str,
    labels: Mapping[str, str],
    service_account: str,
    pod: str = "",
    cluster: str = DEFAULT_CLUSTER,
) -> str:
    """The ``x-envoy-peer-metadata`` value a proxy sends for its own workload."""
    meta = {
        "NAME": pod or workload,
        "WORKLOAD_NAME": workload,
        "NAMESPACE": namespace,
        "LABELS": dict(labels),
        "CLUSTER_ID": cluster,
        "SERVICE_ACCOUNT": service_account,
    }
    text = json.dumps(meta, separators=(",", ":"), sort_keys=True)
    return base64.b64encode(text.encode()).decode("ascii")


def decode_peer(value: str | None, mtls: bool = False) -> Peer:
    """The peer an ``x-envoy-peer-metadata`` value describes; ``UNKNOWN_PEER`` when absent or
    malformed (a request from outside the mesh, or a forged header). The principal is the
    peer's only when the connection is mutual TLS (Istio reads it from the certificate,
    never from the header)."""
    if not value or len(value) > MAX_PEER_METADATA:
        return UNKNOWN_PEER
    try:
        meta = json.loads(base64.b64decode(value, validate=True))
    except (ValueError, UnicodeDecodeError):
        return UNKNOWN_PEER
    if not isinstance(meta, dict):
        return UNKNOWN_PEER
    labels = meta.get("LABELS")
    if not isinstance(labels, dict):
        labels = {}
    labels = {str(k): str(v) for k, v in labels.items()}
    workload = str(meta.get("WORKLOAD_NAME") or "")
    namespace = str(meta.get("NAMESPACE") or "")
    account = str(meta.get("SERVICE_ACCOUNT") or "")
    who = principal(namespace, account) if mtls and namespace and account else UNKNOWN
    return Peer.of_pod(
        workload, namespace, labels, principal=who, cluster=str(meta.get("CLUSTER_ID") or "")
    )


def peer_lines(
    gateway: bool,
    address: str,
    pod: str,
    namespace: str,
    workload: str,
    labels: Mapping[str, str],
    service_account: str,
) -> list[bytes]:
    """The metadata-exchange header lines a proxy adds to every request it sends
    (``x-envoy-peer-metadata-id``, ``x-envoy-peer-metadata``), made once."""
    ident = node_id("router" if gateway else "sidecar", address, pod, namespace)
    meta = encode_peer(workload, namespace, labels, service_account, pod)
    return [
        f"{PEER_METADATA_ID}: {ident}\r\n".encode("latin-1"),
        f"{PEER_METADATA}: {meta}\r\n".encode("latin-1"),
    ]
