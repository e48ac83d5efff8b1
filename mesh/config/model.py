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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal


class DurationMarker:
    """Marks a float field parsed from an Istio duration string ("2.5s", "100ms", "1m")."""


Duration = Annotated[float, DurationMarker]

EMPTY: Mapping[str, Any] = {}


def _empty_map() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class StringMatch:
    """``exact | prefix | regex``; ``kind`` None means presence (``{}``)."""

    kind: Literal["exact", "prefix", "regex"] | None = None
    value: str = ""


@dataclass(frozen=True, slots=True)
class Percent:
    value: float = 0.0


def share(percentage: Percent | None, percent: int | None = None, default: float = 0.0) -> float:
    """The fraction (0..1) of requests a ``percentage`` covers, falling back to Istio's
    deprecated integer ``percent`` field, then to ``default`` when neither is set."""
    if percentage is not None:
        return percentage.value / 100.0
    if percent is not None:
        return percent / 100.0
    return default


@dataclass(frozen=True, slots=True)
class PortSelector:
    number: int | None = None


# ---------------------------------------------------------------- VirtualService


@dataclass(frozen=True, slots=True)
class HTTPMatchRequest:
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: Mapping[str, StringMatch] = field(default_factory=_empty_map)
    port: int | None = None
    source_labels: Mapping[str, str] = field(default_factory=_empty_map)
    gateways: tuple[str, ...] = ()
    query_params: Mapping[str, StringMatch] = field(default_factory=_empty_map)
    ignore_uri_case: bool | None = None
    without_headers: Mapping[str, StringMatch] = field(default_factory=_empty_map)
    source_namespace: str | None = None
    stat_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    host: str = ""
    subset: str | None = None
    port: PortSelector | None = None


@dataclass(frozen=True, slots=True)
class HeaderOperations:
    set: Mapping[str, str] = field(default_factory=_empty_map)
    add: Mapping[str, str] = field(default_factory=_empty_map)
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
    source_labels: Mapping[str, str] = field(default_factory=_empty_map)
    gateways: tuple[str, ...] = ()
    source_namespace: str | None = None


@dataclass(frozen=True, slots=True)
class TLSMatchAttributes:
    sni_hosts: tuple[str, ...] = ()
    destination_subnets: tuple[str, ...] = ()
    port: int | None = None
    source_labels: Mapping[str, str] = field(default_factory=_empty_map)
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


@dataclass(frozen=True, slots=True)
class CookieAttribute:
    name: str = ""
    value: str | None = None


@dataclass(frozen=True, slots=True)
class HTTPCookie:
    name: str = ""
    path: str | None = None
    ttl: Duration | None = None
    attributes: tuple[CookieAttribute, ...] = ()


@dataclass(frozen=True, slots=True)
class RingHash:
    minimum_ring_size: int | None = None


@dataclass(frozen=True, slots=True)
class Maglev:
    table_size: int | None = None


@dataclass(frozen=True, slots=True)
class ConsistentHashLB:
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: Maglev | None = None
    minimum_ring_size: int | None = None  # deprecated


LBSimple = Literal[
    "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
]


@dataclass(frozen=True, slots=True)
class LocalityDistribute:
    from_: str | None = field(default=None, metadata={"yaml": "from"})
    to: Mapping[str, int] = field(default_factory=_empty_map)


@dataclass(frozen=True, slots=True)
class LocalityFailover:
    from_: str | None = field(default=None, metadata={"yaml": "from"})
    to: str | None = None


@dataclass(frozen=True, slots=True)
class LocalityLoadBalancerSetting:
    distribute: tuple[LocalityDistribute, ...] = ()
    failover: tuple[LocalityFailover, ...] = ()
    failover_priority: tuple[str, ...] = ()
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class ZoneAwareLoadBalancerSetting:
    enabled: bool | None = None
    failover: tuple[LocalityFailover, ...] = ()
    failover_priority: tuple[str, ...] = ()
    min_cluster_size: int | None = None


@dataclass(frozen=True, slots=True)
class WarmupConfiguration:
    duration: Duration | None = None
    minimum_percent: float | None = None
    aggression: float | None = None


@dataclass(frozen=True, slots=True)
class LoadBalancerSettings:
    simple: LBSimple | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    zone_aware_lb_setting: ZoneAwareLoadBalancerSetting | None = None
    warmup_duration_secs: Duration | None = None
    warmup: WarmupConfiguration | None = None


@dataclass(frozen=True, slots=True)
class TcpKeepalive:
    probes: int | None = None
    time: Duration | None = None
    interval: Duration | None = None


@dataclass(frozen=True, slots=True)
class ConnectionKeepalive:
    interval: Duration | None = None
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True)
class TCPSettings:
    max_connections: int | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


@dataclass(frozen=True, slots=True)
class HTTPSettings:
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: int | None = None
    http2_keep_alive: ConnectionKeepalive | None = None


@dataclass(frozen=True, slots=True)
class ConnectionPoolSettings:
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    consecutive_errors: int | None = None  # deprecated; Lab decision 1: gateway errors
    consecutive_5xx_errors: int | None = None
    consecutive_gateway_errors: int | None = None
    consecutive_local_origin_failures: int | None = None
    split_external_local_origin_errors: bool | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None
    outlier_detection_http_error_codes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ClientTLSSettings:
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: tuple[str, ...] = ()
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None


@dataclass(frozen=True, slots=True)
class PortTrafficPolicy:
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


@dataclass(frozen=True, slots=True)
class TunnelSettings:
    protocol: str | None = None
    target_host: str | None = None
    target_port: int | None = None


@dataclass(frozen=True, slots=True)
class ProxyProtocol:
    version: Literal["V1", "V2"] | None = None


@dataclass(frozen=True, slots=True)
class RetryBudget:
    percent: float | None = None
    min_retry_concurrency: int | None = None
    budget_interval: Duration | None = None


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None

    def overridden_by(self, other: TrafficPolicy | None) -> TrafficPolicy:
        """This policy with ``other``'s set fields on top (a subset inherits field by field)."""
        if other is None:
            return self
        return TrafficPolicy(
            load_balancer=other.load_balancer or self.load_balancer,
            connection_pool=other.connection_pool or self.connection_pool,
            outlier_detection=other.outlier_detection or self.outlier_detection,
            tls=other.tls or self.tls,
            port_level_settings=other.port_level_settings or self.port_level_settings,
            tunnel=other.tunnel or self.tunnel,
            proxy_protocol=other.proxy_protocol or self.proxy_protocol,
            retry_budget=other.retry_budget or self.retry_budget,
        )

    def for_port(self, port: int) -> TrafficPolicy:
        """Apply ``portLevelSettings`` for ``port`` (they override the top level)."""
        for level in self.port_level_settings:
            if level.port is not None and level.port.number == port:
                return TrafficPolicy(
                    load_balancer=level.load_balancer or self.load_balancer,
                    connection_pool=level.connection_pool or self.connection_pool,
                    outlier_detection=level.outlier_detection or self.outlier_detection,
                    tls=level.tls or self.tls,
                )
        return self


NO_POLICY = TrafficPolicy()


@dataclass(frozen=True, slots=True)
class Subset:
    name: str = ""
    labels: Mapping[str, str] = field(default_factory=_empty_map)
    traffic_policy: TrafficPolicy | None = None


@dataclass(frozen=True, slots=True)
class WorkloadSelector:
    match_labels: Mapping[str, str] = field(default_factory=_empty_map)


@dataclass(frozen=True, slots=True)
class DestinationRule:
    host: str = ""
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[str, ...] = ()
    workload_selector: WorkloadSelector | None = None


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
    selector: Mapping[str, str] = field(default_factory=_empty_map)


# ---------------------------------------------------------------- security.istio.io
# PeerAuthentication and AuthorizationPolicy (istio/api security/v1beta1, served as v1 too).
# A list written empty (``from: []``) stays distinct from one left out (None) where Istio's
# validation tells them apart.

MtlsModeName = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]
AuthorizationAction = Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"]


@dataclass(frozen=True, slots=True)
class MutualTLS:
    mode: MtlsModeName | None = None


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    # Keys are the workload's (container) port numbers as written; validation checks them.
    port_level_mtls: Mapping[str, MutualTLS] | None = None


@dataclass(frozen=True, slots=True)
class PolicyTargetReference:
    group: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    request_principals: tuple[str, ...] = ()
    not_request_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    not_service_accounts: tuple[str, ...] = ()
    ip_blocks: tuple[str, ...] = ()
    not_ip_blocks: tuple[str, ...] = ()
    remote_ip_blocks: tuple[str, ...] = ()
    not_remote_ip_blocks: tuple[str, ...] = ()
    trust_domains: tuple[str, ...] = ()
    not_trust_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    hosts: tuple[str, ...] = ()
    not_hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    not_ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleFrom:
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class RuleTo:
    operation: Operation | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    key: str | None = None
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    from_: tuple[RuleFrom | None, ...] | None = field(default=None, metadata={"yaml": "from"})
    to: tuple[RuleTo | None, ...] | None = None
    when: tuple[Condition | None, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtensionProvider:
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    rules: tuple[Rule | None, ...] | None = None
    action: AuthorizationAction | None = None  # None = ALLOW, Istio's default
    provider: ExtensionProvider | None = None


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
    ports: Mapping[str, int] = field(default_factory=_empty_map)
    labels: Mapping[str, str] = field(default_factory=_empty_map)
    network: str | None = None
    locality: str | None = None
    weight: int | None = None
    service_account: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceEntryWorkloadSelector:
    labels: Mapping[str, str] = field(default_factory=_empty_map)


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
