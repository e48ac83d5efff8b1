"""DestinationRule: the per-resource checks (host, subsets, traffic policy: load balancer,
connection pool, outlier detection, TLS, port-level settings).

``check_destination_rule`` is the entry; ``check_traffic_policy`` serves the rule's and each
subset's policy alike.
"""

from __future__ import annotations

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import (
    ClientTLSSettings,
    DestinationRule,
    LoadBalancerSettings,
    OutlierDetection,
    TrafficPolicy,
)
from mesh.config.resource import Resource
from mesh.config.validate.values import DNS1123_LABEL, WILDCARD_HOST, Findings, check_duration


def check_destination_rule(resource: Resource, out: list[Issue]) -> None:
    spec: DestinationRule = resource.spec
    found = Findings(resource, out)
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


def check_traffic_policy(found: Findings, path: str, policy: TrafficPolicy) -> None:
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
            for field_name in settings.__slots__:
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
        check_client_tls(found, f"{path}.tls", policy.tls)
        found.info(
            f"{path}.tls", "tls is accepted and has no effect until mutual TLS lands in the lab"
        )
    for k, level in enumerate(policy.port_level_settings):
        lpath = f"{path}.portLevelSettings[{k}]"
        if level.port is None or not level.port.number:
            found.error(f"{lpath}.port", "port.number is required")
        if level.tls is not None:
            check_client_tls(found, f"{lpath}.tls", level.tls)
        if level.load_balancer is not None:
            check_load_balancer(found, f"{lpath}.loadBalancer", level.load_balancer)
        if level.outlier_detection is not None:
            check_outlier(found, f"{lpath}.outlierDetection", level.outlier_detection)


def check_load_balancer(found: Findings, path: str, lb: LoadBalancerSettings) -> None:
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


def check_outlier(found: Findings, path: str, outlier: OutlierDetection) -> None:
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


def check_client_tls(found: Findings, path: str, tls: ClientTLSSettings) -> None:
    """Istio's ``ValidateTLS`` for a DestinationRule's client TLS settings."""
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
