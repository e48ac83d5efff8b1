"""DestinationRule: Istio's webhook rules (``ValidateDestinationRule`` in validation.go and
the TLS and locality checks of agent/validation.go): host, subsets, exportTo, workload
selector, and the traffic policy (load balancer, connection pool, outlier detection, TLS,
port-level settings, tunnel, proxy protocol, warm-up).

``check_destination_rule`` is the entry; ``check_traffic_policy`` serves the rule's and each
subset's policy alike.
"""

from __future__ import annotations

import math

from mesh.config.issues import Issue
from mesh.config.model import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    DestinationRule,
    LoadBalancerSettings,
    LocalityFailover,
    LocalityLoadBalancerSetting,
    OutlierDetection,
    PortTrafficPolicy,
    TrafficPolicy,
    ZoneAwareLoadBalancerSetting,
)
from mesh.config.resource import Resource
from mesh.config.validate.values import (
    Findings,
    check_duration,
    check_export_to,
    check_int_percent,
    check_labels,
    check_port,
    check_workload_selector,
    fqdn_problem,
    is_dns1123_label,
    is_ip,
    wildcard_domain_problem,
)

TOPOLOGY_LABELS = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)
MAGLEV_TABLE_LIMIT = 5000011


def check_destination_rule(resource: Resource, out: list[Issue]) -> None:
    spec: DestinationRule = resource.spec
    found = Findings(resource, out)
    problem = wildcard_domain_problem(spec.host)
    if problem:
        found.error("host", problem)
    if spec.traffic_policy is not None:
        check_traffic_policy(found, "trafficPolicy", spec.traffic_policy)
    names: dict[str, int] = {}
    for i, subset in enumerate(spec.subsets):
        path = f"subsets[{i}]"
        if subset.name in names:
            found.error(f"{path}.name", f"duplicate subset names: {subset.name}")
        names.setdefault(subset.name, i)
        if not subset.name:
            found.error(f"{path}.name", "subset name cannot be empty")
        elif not is_dns1123_label(subset.name):
            found.error(f"{path}.name", f"subset name is invalid: {subset.name}")
        check_labels(found, f"{path}.labels", subset.labels)
        if subset.traffic_policy is not None:
            check_traffic_policy(found, f"{path}.trafficPolicy", subset.traffic_policy)
    selector = spec.workload_selector
    check_export_to(
        found, "exportTo", resource.namespace, spec.export_to, with_selector=selector is not None
    )
    if selector is not None:
        check_workload_selector(found, "workloadSelector", selector)
        found.lab(
            "workloadSelector",
            "workloadSelector is accepted but the lab applies the rule to every proxy "
            "(Lab decision 6)",
        )


def check_traffic_policy(found: Findings, path: str, policy: TrafficPolicy) -> None:
    if policy == TrafficPolicy():
        found.error(path, "traffic policy must have at least one field")
        return
    if policy.tunnel is not None and policy.proxy_protocol is not None:
        found.error(path, "tunnel and proxyProtocol must not be set together")
        return
    check_policy_parts(found, path, policy)
    for k, level in enumerate(policy.port_level_settings):
        check_port_policy(found, f"{path}.portLevelSettings[{k}]", level)
    tunnel = policy.tunnel
    if tunnel is not None:
        tpath = f"{path}.tunnel"
        if tunnel.protocol and tunnel.protocol not in ("CONNECT", "POST"):
            found.error(f"{tpath}.protocol", 'tunnel protocol must be "CONNECT" or "POST"')
        target = tunnel.target_host or ""
        host_problem = fqdn_problem(target)
        if host_problem and not is_ip(target):
            found.error(
                f"{tpath}.targetHost",
                f"tunnel target host must be valid FQDN or IP address: {host_problem}",
            )
        check_port(found, f"{tpath}.targetPort", tunnel.target_port)
    originated = [
        tls.mode
        for tls in (policy.tls, *(level.tls for level in policy.port_level_settings))
        if tls is not None and tls.mode in ("SIMPLE", "MUTUAL")
    ]
    if originated:
        found.lab(
            f"{path}.tls",
            f"tls mode {originated[0]} needs certificate files the lab's pods do not have: its "
            "connections fail with 503 UF (ISTIO_MUTUAL and DISABLE apply) (Lab decision 7)",
        )


def check_port_policy(found: Findings, path: str, level: PortTrafficPolicy) -> None:
    if level.port is None:
        found.error(f"{path}.port", "portTrafficPolicy must have valid port")
    if (
        level.outlier_detection is None
        and level.connection_pool is None
        and level.load_balancer is None
        and level.tls is None
    ):
        found.error(path, "port traffic policy must have at least one field")
        return
    check_policy_parts(found, path, level)


def check_policy_parts(
    found: Findings, path: str, policy: TrafficPolicy | PortTrafficPolicy
) -> None:
    if policy.outlier_detection is not None:
        check_outlier(found, f"{path}.outlierDetection", policy.outlier_detection)
    if policy.connection_pool is not None:
        check_connection_pool(found, f"{path}.connectionPool", policy.connection_pool)
    if policy.load_balancer is not None:
        check_load_balancer(
            found, f"{path}.loadBalancer", policy.load_balancer, policy.outlier_detection
        )
    if policy.tls is not None:
        check_client_tls(found, f"{path}.tls", policy.tls)


def check_outlier(found: Findings, path: str, outlier: OutlierDetection) -> None:
    check_duration(found, f"{path}.baseEjectionTime", outlier.base_ejection_time)
    if outlier.consecutive_errors:
        found.warn(
            f"{path}.consecutiveErrors",
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or "
            "consecutive5xxErrors instead",
        )
        found.lab(
            f"{path}.consecutiveErrors",
            "the lab honours consecutiveErrors as consecutive gateway errors (502/503/504), as "
            "Istio ≤ 1.6 did; Istio ≥ 1.7 ignores it (Lab decision 1)",
        )
    if (
        not outlier.split_external_local_origin_errors
        and (outlier.consecutive_local_origin_failures or 0) > 0
    ):
        found.error(
            path,
            "outlier detection consecutive local origin failures is specified, but split "
            "external local origin errors is set to false",
        )
    check_duration(found, f"{path}.interval", outlier.interval)
    check_int_percent(found, f"{path}.maxEjectionPercent", outlier.max_ejection_percent)
    check_int_percent(found, f"{path}.minHealthPercent", outlier.min_health_percent)


def check_connection_pool(found: Findings, path: str, pool: ConnectionPoolSettings) -> None:
    if pool.http is None and pool.tcp is None:
        found.error(path, "connection pool must have at least one field")
        return
    http = pool.http
    if http is not None:
        hpath = f"{path}.http"
        for value, what in (
            (http.http1_max_pending_requests, "http1 max pending requests"),
            (http.http2_max_requests, "http2 max requests"),
            (http.max_requests_per_connection, "max requests per connection"),
            (http.max_retries, "max retries"),
            (http.max_concurrent_streams, "max concurrent streams"),
        ):
            if (value or 0) < 0:
                found.error(hpath, f"{what} must be non-negative")
        check_duration(found, f"{hpath}.idleTimeout", http.idle_timeout)
        if http.h2_upgrade_policy == "UPGRADE" and http.use_client_protocol:
            found.error(
                hpath, "use client protocol must not be true when H2UpgradePolicy is UPGRADE"
            )
        keepalive = http.http2_keep_alive
        if keepalive is not None:
            kpath = f"{hpath}.http2KeepAlive"
            durations = {"interval": keepalive.interval, "timeout": keepalive.timeout}
            for what, duration in durations.items():
                if duration is None:
                    found.error(kpath, f"http2 keepalive {what} is required")
                else:
                    check_duration(found, f"{kpath}.{what}", duration)
    tcp = pool.tcp
    if tcp is not None:
        tpath = f"{path}.tcp"
        if (tcp.max_connections or 0) < 0:
            found.error(tpath, "max connections must be non-negative")
        check_duration(found, f"{tpath}.connectTimeout", tcp.connect_timeout)
        check_duration(found, f"{tpath}.maxConnectionDuration", tcp.max_connection_duration)
        # idleTimeout 0s disables the timeout: Istio skips it.
        if tcp.idle_timeout is not None and round(tcp.idle_timeout * 1000) != 0:
            check_duration(found, f"{tpath}.idleTimeout", tcp.idle_timeout)
        if tcp.tcp_keepalive is not None:
            check_duration(found, f"{tpath}.tcpKeepalive.time", tcp.tcp_keepalive.time)
            check_duration(found, f"{tpath}.tcpKeepalive.interval", tcp.tcp_keepalive.interval)


def is_prime(value: int) -> bool:
    """Envoy's (and so Istio's) primality test for maglev table sizes."""
    if 0 < value < 4:
        return True
    if value % 2 == 0:
        return False
    return all(value % factor for factor in range(3, math.isqrt(value) + 1, 2))


def check_load_balancer(
    found: Findings, path: str, lb: LoadBalancerSettings, outlier: OutlierDetection | None
) -> None:
    ch = lb.consistent_hash
    if ch is not None:
        cpath = f"{path}.consistentHash"
        cookie = ch.http_cookie
        if cookie is not None:
            if not cookie.name:
                found.error(f"{cpath}.httpCookie.name", "name required for HttpCookie")
            names: set[str] = set()
            for k, attribute in enumerate(cookie.attributes):
                apath = f"{cpath}.httpCookie.attributes[{k}]"
                if not attribute.name:
                    found.error(apath, "cookie attribute name cannot be empty")
                elif attribute.name in names:
                    found.error(apath, f"duplicate cookie attribute name: {attribute.name}")
                names.add(attribute.name)
        if ch.minimum_ring_size:
            found.warn(
                f"{cpath}.minimumRingSize",
                "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
                "configuration instead",
            )
            if ch.ring_hash is not None or ch.maglev is not None:
                found.error(
                    cpath, "only one of MinimumRingSize or Maglev/Ringhash can be specified"
                )
        if ch.maglev is not None:
            size = ch.maglev.table_size or 0
            if size == 0:
                found.error(f"{cpath}.maglev.tableSize", "tableSize must be set for maglev")
            if size >= MAGLEV_TABLE_LIMIT:
                found.error(
                    f"{cpath}.maglev.tableSize", "tableSize must be less than 5000011 for maglev"
                )
            if not is_prime(size):
                found.error(
                    f"{cpath}.maglev.tableSize", "tableSize must be a prime number for maglev"
                )
    if lb.locality_lb_setting is not None and lb.zone_aware_lb_setting is not None:
        found.error(path, "only one of localityLbSetting and zoneAwareLbSetting can be set")
    if lb.locality_lb_setting is not None:
        check_locality_lb(found, f"{path}.localityLbSetting", lb.locality_lb_setting, outlier)
    if lb.zone_aware_lb_setting is not None:
        check_zone_aware_lb(found, f"{path}.zoneAwareLbSetting", lb.zone_aware_lb_setting, outlier)
    warmup = lb.warmup
    if warmup is not None:
        wpath = f"{path}.warmup"
        if warmup.duration is None:
            found.error(wpath, "duration is required")
        else:
            check_duration(found, f"{wpath}.duration", warmup.duration)
        if (warmup.minimum_percent or 0) > 100:
            found.error(wpath, "minimumPercent value should be less than or equal to 100")
        if warmup.aggression is not None and warmup.aggression <= 0:
            found.error(wpath, "aggression should be greater than 0")
    if lb.simple == "PASSTHROUGH":
        found.lab(
            f"{path}.simple", "PASSTHROUGH is treated as ROUND_ROBIN by the lab (Lab decision 4)"
        )


def check_locality_lb(
    found: Findings, path: str, lb: LocalityLoadBalancerSetting, outlier: OutlierDetection | None
) -> None:
    """Istio's ValidateLocalityLbSetting (it stops at the first weight problem)."""
    if lb.distribute and lb.failover:
        found.error(path, "can not simultaneously specify 'distribute' and 'failover'")
        return
    if lb.failover and lb.failover_priority:
        for label in lb.failover_priority:
            if label in TOPOLOGY_LABELS:
                found.error(
                    path,
                    f"can not simultaneously set 'failover' and topology label '{label}' in "
                    "'failover_priority'",
                )
                return
    sources = []
    for k, distribute in enumerate(lb.distribute):
        sources.append(distribute.from_ or "")
        total = 0
        for weight in distribute.to.values():
            if weight <= 0 or weight > 100:
                found.error(
                    f"{path}.distribute[{k}].to", "locality weight must be in range [1, 100]"
                )
                return
            total += weight
        if total != 100:
            found.error(f"{path}.distribute[{k}].to", f"total locality weight {total} != 100")
            return
        problem = localities_problem(list(distribute.to))
        if problem:
            found.error(f"{path}.distribute[{k}].to", problem)
    problem = localities_problem(sources)
    if problem:
        found.error(f"{path}.distribute", problem)
    if (lb.failover or lb.failover_priority) and outlier is None:
        found.warn(path, "outlier detection policy must be provided for failover")
    _check_failover(found, path, lb.failover, "locality lb")


def check_zone_aware_lb(
    found: Findings, path: str, lb: ZoneAwareLoadBalancerSetting, outlier: OutlierDetection | None
) -> None:
    for label in lb.failover_priority:
        if label in TOPOLOGY_LABELS:
            found.error(
                f"{path}.failoverPriority",
                f"'failover_priority' for zone aware lb must not use topology label '{label}'; "
                "region- and zone-level routing are handled automatically",
            )
    if (lb.failover or lb.failover_priority) and outlier is None:
        found.warn(path, "outlier detection policy must be provided for failover")
    _check_failover(found, path, lb.failover, "zone aware lb")


def _check_failover(
    found: Findings, path: str, failovers: tuple[LocalityFailover, ...], what: str
) -> None:
    for k, failover in enumerate(failovers):
        source, target = failover.from_ or "", failover.to or ""
        fpath = f"{path}.failover[{k}]"
        if source == target:
            found.error(fpath, f"{what} failover settings must specify different regions")
        if "/" in source or "/" in target:
            found.error(fpath, f"{what} failover only specify region")
        if "*" in source or "*" in target:
            found.error(fpath, f"{what} failover region should not contain '*' wildcard")


def localities_problem(localities: list[str]) -> str | None:
    """Istio's validateLocalities: ``region[/zone[/subzone]]``, a trailing ``*``, no overlap."""
    tree: dict[str, dict[str, dict[str, bool]]] = {}
    for locality in localities:
        stars = locality.count("*")
        if stars and (stars > 1 or not locality.endswith("*")):
            return (
                f"locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
            )
        if "*" in tree:
            return f"locality {locality} overlap with previous specified ones"
        items = locality.split("/", 2)
        if any(item == "" for item in items):
            return f"locality {locality} must not contain empty region/zone/subzone info"
        region = items[0]
        overlap = f"locality {locality} overlap with previous specified ones"
        if len(items) == 1:
            if region in tree:
                return overlap
            tree[region] = {"*": {"*": True}}
        elif len(items) == 2:
            zone = items[1]
            zones = tree.get(region)
            if zones is not None:
                if "*" in zones or zone in zones:
                    return overlap
                zones[zone] = {"*": True}
            else:
                tree[region] = {zone: {"*": True}}
        else:
            zone, subzone = items[1], items[2]
            zones = tree.get(region)
            if zones is None:
                tree[region] = {zone: {subzone: True}}
            elif "*" in zones:
                return overlap
            elif zone in zones:
                if zones[zone].get("*") or zones[zone].get(subzone):
                    return overlap
                zones[zone][subzone] = True
            else:
                zones[zone] = {subzone: True}
    return None


def check_client_tls(found: Findings, path: str, tls: ClientTLSSettings) -> None:
    """Istio's ValidateTLS (client side)."""
    if tls.insecure_skip_verify:
        if tls.mode == "SIMPLE" and (
            tls.ca_certificates or tls.credential_name or tls.subject_alt_names
        ):
            found.error(
                path,
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                "InsecureSkipVerify is set true",
            )
        if tls.mode == "MUTUAL" and (tls.ca_certificates or tls.subject_alt_names):
            found.error(
                path,
                "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true",
            )
    if tls.mode in ("SIMPLE", "MUTUAL") and tls.credential_name:
        if tls.client_certificate or tls.ca_certificates or tls.private_key or tls.ca_crl:
            found.error(
                path,
                "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
            )
        return
    if tls.mode == "MUTUAL":
        if not tls.client_certificate:
            found.error(f"{path}.clientCertificate", "client certificate required for mutual tls")
        if not tls.private_key:
            found.error(f"{path}.privateKey", "private key required for mutual tls")
