"""DestinationRule as frozen, typed dataclasses: subsets and the traffic policy (load
balancing, connection pool, outlier detection, client TLS), with how policies layer
(``TrafficPolicy.overridden_by`` for a subset, ``for_port`` for port-level settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mesh.config.fields import (
    Duration,
    PortSelector,
    WorkloadSelector,
    empty_map,
)


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
    to: Mapping[str, int] = field(default_factory=empty_map)


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
    labels: Mapping[str, str] = field(default_factory=empty_map)
    traffic_policy: TrafficPolicy | None = None


@dataclass(frozen=True, slots=True)
class DestinationRule:
    host: str = ""
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[str, ...] = ()
    workload_selector: WorkloadSelector | None = None
