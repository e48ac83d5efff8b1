"""The Istio traffic-management model as frozen, typed dataclasses.

Field names are Istio's in snake_case; ``mesh.config.loader`` holds the one mapping from
camelCase (``consecutive5xxErrors`` ↔ ``consecutive_5xx_errors``, derived mechanically, with
``yaml=`` metadata for the few exceptions). Durations are float seconds (``Duration``),
percentages are ``Percent``. A field left out of the YAML is ``None`` (or an empty tuple /
mapping), so "unset" and "zero" stay distinct, as in protobuf's wrappers.

Primitives: ``StringMatch``; VirtualService (``HTTPMatchRequest``, ``HTTPRoute``,
``HTTPRouteDestination``, ``Destination``, ``Headers``, ``HTTPRewrite``, ``HTTPRedirect``,
``HTTPDirectResponse``, ``HTTPRetry``, ``HTTPFaultInjection``, ``CorsPolicy``);
DestinationRule (``Subset``, ``TrafficPolicy``, ``LoadBalancerSettings``,
``ConnectionPoolSettings``, ``OutlierDetection``); Gateway (``Server``, ``Port``);
PeerAuthentication (``MutualTLS``); AuthorizationPolicy (``Rule``, ``Source``, ``Operation``,
``Condition``). ``SPEC_TYPES`` and ``SPEC_GROUPS`` register each kind with its API group.

This module is the one import for the whole model: it holds VirtualService, Gateway and
ServiceEntry, and re-exports the shared field types (``mesh.config.fields``), DestinationRule
(``mesh.config.traffic_policy``) and the security kinds (``mesh.config.security_policy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mesh.config.fields import (
    EMPTY,
    Duration,
    DurationMarker,
    Percent,
    PortSelector,
    StringMatch,
    WorkloadSelector,
    empty_map,
    share,
)
from mesh.config.security_policy import (
    AuthorizationAction,
    AuthorizationPolicy,
    Condition,
    ExtensionProvider,
    MtlsModeName,
    MutualTLS,
    Operation,
    PeerAuthentication,
    PolicyTargetReference,
    Rule,
    RuleFrom,
    RuleTo,
    Source,
)
from mesh.config.traffic_policy import (
    NO_POLICY,
    ClientTLSSettings,
    ConnectionKeepalive,
    ConnectionPoolSettings,
    ConsistentHashLB,
    CookieAttribute,
    DestinationRule,
    HTTPCookie,
    HTTPSettings,
    LBSimple,
    LoadBalancerSettings,
    LocalityDistribute,
    LocalityFailover,
    LocalityLoadBalancerSetting,
    Maglev,
    OutlierDetection,
    PortTrafficPolicy,
    ProxyProtocol,
    RetryBudget,
    RingHash,
    Subset,
    TcpKeepalive,
    TCPSettings,
    TrafficPolicy,
    TunnelSettings,
    WarmupConfiguration,
    ZoneAwareLoadBalancerSetting,
)

# ---------------------------------------------------------------- VirtualService


@dataclass(frozen=True, slots=True)
class HTTPMatchRequest:
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: Mapping[str, StringMatch] = field(default_factory=empty_map)
    port: int | None = None
    source_labels: Mapping[str, str] = field(default_factory=empty_map)
    gateways: tuple[str, ...] = ()
    query_params: Mapping[str, StringMatch] = field(default_factory=empty_map)
    ignore_uri_case: bool | None = None
    without_headers: Mapping[str, StringMatch] = field(default_factory=empty_map)
    source_namespace: str | None = None
    stat_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    host: str = ""
    subset: str | None = None
    port: PortSelector | None = None


@dataclass(frozen=True, slots=True)
class HeaderOperations:
    set: Mapping[str, str] = field(default_factory=empty_map)
    add: Mapping[str, str] = field(default_factory=empty_map)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Headers:
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


@dataclass(frozen=True, slots=True)
class HTTPRouteDestination:
    destination: Destination | None = None
    weight: int | None = None
    headers: Headers | None = None


@dataclass(frozen=True, slots=True)
class RegexRewrite:
    match: str = ""
    rewrite: str = ""


@dataclass(frozen=True, slots=True)
class HTTPRewrite:
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


@dataclass(frozen=True, slots=True)
class HTTPRedirect:
    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirect_code: int | None = None
    prefix_rewrite: str | None = None


@dataclass(frozen=True, slots=True)
class HTTPBody:
    string: str | None = None
    bytes: str | None = None  # base64, as in Istio's proto JSON


@dataclass(frozen=True, slots=True)
class HTTPDirectResponse:
    status: int | None = None
    body: HTTPBody | None = None


@dataclass(frozen=True, slots=True)
class Delegate:
    name: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class HTTPRetry:
    attempts: int | None = None
    per_try_timeout: Duration | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Duration | None = None


@dataclass(frozen=True, slots=True)
class Delay:
    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None
    percent: int | None = None  # deprecated


@dataclass(frozen=True, slots=True)
class Abort:
    http_status: int | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None


@dataclass(frozen=True, slots=True)
class HTTPFaultInjection:
    delay: Delay | None = None
    abort: Abort | None = None


@dataclass(frozen=True, slots=True)
class HTTPMirrorPolicy:
    destination: Destination | None = None
    percentage: Percent | None = None


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    allow_origins: tuple[StringMatch, ...] = ()
    allow_origin: tuple[str, ...] = ()  # deprecated
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: Duration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: Literal["FORWARD", "IGNORE", "UNSPECIFIED"] | None = None


@dataclass(frozen=True, slots=True)
class HTTPRoute:
    name: str | None = None
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = ()
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    mirror_percentage: Percent | None = None
    mirror_percent: int | None = None  # deprecated
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


@dataclass(frozen=True, slots=True)
class RouteDestination:
    destination: Destination | None = None
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class L4MatchAttributes:
    destination_subnets: tuple[str, ...] = ()
    port: int | None = None
    source_subnet: str | None = None
    source_labels: Mapping[str, str] = field(default_factory=empty_map)
    gateways: tuple[str, ...] = ()
    source_namespace: str | None = None


@dataclass(frozen=True, slots=True)
class TLSMatchAttributes:
    sni_hosts: tuple[str, ...] = ()
    destination_subnets: tuple[str, ...] = ()
    port: int | None = None
    source_labels: Mapping[str, str] = field(default_factory=empty_map)
    gateways: tuple[str, ...] = ()
    source_namespace: str | None = None


@dataclass(frozen=True, slots=True)
class TCPRoute:
    match: tuple[L4MatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


@dataclass(frozen=True, slots=True)
class TLSRoute:
    match: tuple[TLSMatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


@dataclass(frozen=True, slots=True)
class VirtualService:
    hosts: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[TLSRoute, ...] = ()  # TLS and TCP routes are validated but not served by the lab
    tcp: tuple[TCPRoute, ...] = ()
    export_to: tuple[str, ...] = ()


# ---------------------------------------------------------------- DestinationRule
# Its messages are in mesh.config.traffic_policy; security.istio.io's in
# mesh.config.security_policy; the shared field types in mesh.config.fields.


# ---------------------------------------------------------------- Gateway


@dataclass(frozen=True, slots=True)
class Port:
    number: int | None = None
    protocol: str | None = None
    name: str | None = None
    target_port: int | None = None


@dataclass(frozen=True, slots=True)
class TLSCertificate:
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None


@dataclass(frozen=True, slots=True)
class ServerTLSSettings:
    https_redirect: bool | None = None
    mode: (
        Literal[
            "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"
        ]
        | None
    ) = None
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    credential_names: tuple[str, ...] = ()
    subject_alt_names: tuple[str, ...] = ()
    min_protocol_version: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = (
        None
    )
    max_protocol_version: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = (
        None
    )
    cipher_suites: tuple[str, ...] = ()
    ca_crl: str | None = None
    ca_cert_credential_name: str | None = None
    tls_certificates: tuple[TLSCertificate, ...] = ()
    verify_certificate_spki: tuple[str, ...] = ()
    verify_certificate_hash: tuple[str, ...] = ()
    insecure_skip_verify: bool | None = None


@dataclass(frozen=True, slots=True)
class Server:
    port: Port | None = None
    bind: str | None = None
    hosts: tuple[str, ...] = ()
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Gateway:
    servers: tuple[Server, ...] = ()
    selector: Mapping[str, str] = field(default_factory=empty_map)


NETWORKING_GROUP = "networking.istio.io"
SECURITY_GROUP = "security.istio.io"

# ---------------------------------------------------------------- ServiceEntry


@dataclass(frozen=True, slots=True)
class ServicePort:
    number: int | None = None
    protocol: str | None = None
    name: str | None = None
    target_port: int | None = None


@dataclass(frozen=True, slots=True)
class WorkloadEntry:
    address: str | None = None
    ports: Mapping[str, int] = field(default_factory=empty_map)
    labels: Mapping[str, str] = field(default_factory=empty_map)
    network: str | None = None
    locality: str | None = None
    weight: int | None = None
    service_account: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceEntryWorkloadSelector:
    labels: Mapping[str, str] = field(default_factory=empty_map)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    hosts: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    endpoints: tuple[WorkloadEntry, ...] = ()
    workload_selector: ServiceEntryWorkloadSelector | None = None
    export_to: tuple[str, ...] = ()
    subject_alt_names: tuple[str, ...] = ()


SPEC_TYPES: dict[str, type] = {
    "VirtualService": VirtualService,
    "DestinationRule": DestinationRule,
    "Gateway": Gateway,
    "PeerAuthentication": PeerAuthentication,
    "AuthorizationPolicy": AuthorizationPolicy,
    "ServiceEntry": ServiceEntry,
}

# The API group of each kind, and the versions the lab reads in each group.
SPEC_GROUPS: dict[str, str] = {
    "VirtualService": NETWORKING_GROUP,
    "DestinationRule": NETWORKING_GROUP,
    "Gateway": NETWORKING_GROUP,
    "PeerAuthentication": SECURITY_GROUP,
    "AuthorizationPolicy": SECURITY_GROUP,
    "ServiceEntry": NETWORKING_GROUP,
}
GROUP_VERSIONS: dict[str, tuple[str, ...]] = {
    NETWORKING_GROUP: ("v1alpha3", "v1beta1", "v1"),
    SECURITY_GROUP: ("v1beta1", "v1"),
}

# The whole model is imported from here; its parts live in fields, traffic_policy and
# security_policy.
__all__ = [
    "Abort",
    "AuthorizationAction",
    "AuthorizationPolicy",
    "ClientTLSSettings",
    "Condition",
    "ConnectionKeepalive",
    "ConnectionPoolSettings",
    "ConsistentHashLB",
    "CookieAttribute",
    "CorsPolicy",
    "Delay",
    "Delegate",
    "Destination",
    "DestinationRule",
    "Duration",
    "DurationMarker",
    "EMPTY",
    "ExtensionProvider",
    "GROUP_VERSIONS",
    "Gateway",
    "HTTPBody",
    "HTTPCookie",
    "HTTPDirectResponse",
    "HTTPFaultInjection",
    "HTTPMatchRequest",
    "HTTPMirrorPolicy",
    "HTTPRedirect",
    "HTTPRetry",
    "HTTPRewrite",
    "HTTPRoute",
    "HTTPRouteDestination",
    "HTTPSettings",
    "HeaderOperations",
    "Headers",
    "L4MatchAttributes",
    "LBSimple",
    "LoadBalancerSettings",
    "LocalityDistribute",
    "LocalityFailover",
    "LocalityLoadBalancerSetting",
    "Maglev",
    "MtlsModeName",
    "MutualTLS",
    "NETWORKING_GROUP",
    "NO_POLICY",
    "Operation",
    "OutlierDetection",
    "PeerAuthentication",
    "Percent",
    "PolicyTargetReference",
    "Port",
    "PortSelector",
    "PortTrafficPolicy",
    "ProxyProtocol",
    "RegexRewrite",
    "RetryBudget",
    "RingHash",
    "RouteDestination",
    "Rule",
    "RuleFrom",
    "RuleTo",
    "SECURITY_GROUP",
    "SPEC_GROUPS",
    "SPEC_TYPES",
    "Server",
    "ServerTLSSettings",
    "ServiceEntry",
    "ServiceEntryWorkloadSelector",
    "ServicePort",
    "Source",
    "StringMatch",
    "Subset",
    "TCPRoute",
    "TCPSettings",
    "TLSCertificate",
    "TLSMatchAttributes",
    "TLSRoute",
    "TcpKeepalive",
    "TrafficPolicy",
    "TunnelSettings",
    "VirtualService",
    "WarmupConfiguration",
    "WorkloadEntry",
    "WorkloadSelector",
    "ZoneAwareLoadBalancerSetting",
    "share",
]
