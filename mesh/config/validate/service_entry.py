"""ServiceEntry: Istio's webhook rules (``ValidateServiceEntry`` and ``validateWorkloadEntry``
in validation.go): hosts, addresses, ports, resolution (NONE, STATIC, DNS, DNS_ROUND_ROBIN,
DYNAMIC_DNS) and what each allows of endpoints and workload selectors, and exportTo."""

from __future__ import annotations

from collections.abc import Collection

from mesh.config.issues import Issue
from mesh.config.model import ServiceEntry, WorkloadEntry
from mesh.config.resource import Resource
from mesh.config.validate.gateway import HTTP_PROTOCOLS, PROTOCOLS, TLS_PROTOCOLS
from mesh.config.validate.values import (
    Findings,
    check_export_to,
    check_labels,
    check_port,
    fqdn_problem,
    is_dns1123_label,
    is_ip,
    is_ip_subnet,
    partial_wildcard_problem,
    wildcard_domain_problem,
)

TCP_PROTOCOLS = frozenset({"TCP", "HTTPS", "TLS", "MONGO", "REDIS", "MYSQL"})
UNIX_PREFIX = "unix://"
# Istio's label.IoIstioUseWaypoint.
USE_WAYPOINT = "istio.io/use-waypoint"


def check_service_entry(resource: Resource, out: list[Issue]) -> None:
    spec: ServiceEntry = resource.spec
    found = Findings(resource, out)
    selector = spec.workload_selector
    if selector is not None:
        bad = [(k, v) for k, v in selector.labels.items() if not k or "*" in k or "*" in v]
        for key, value in bad:
            why = "empty key" if not key else "wildcard"
            found.error("workloadSelector", f"{why} is not supported in selector: {key}={value}")
        if bad:
            return  # Istio stops here
        if not selector.labels:
            found.warn(
                "workloadSelector",
                "service entry: workload selector specified without labels, will be applied to "
                "all services in namespace",
            )
        if spec.endpoints:
            found.error("", "only one of WorkloadSelector or Endpoints is allowed in Service Entry")
    if not spec.hosts:
        found.error("hosts", "service entry must have at least one host")
    resolution = spec.resolution or "NONE"
    for i, host in enumerate(spec.hosts):
        if host == "*":
            found.error(f"hosts[{i}]", f"invalid host {host}")
            continue
        problem = wildcard_domain_problem(host)
        if problem:
            found.error(f"hosts[{i}]", problem)
        if resolution != "DYNAMIC_DNS":
            partial = partial_wildcard_problem(host)
            if partial:
                found.warn(f"hosts[{i}]", partial)
    cidr = False
    for i, address in enumerate(spec.addresses):
        cidr = cidr or "/" in address
        if not is_ip_subnet(address):
            found.error(f"addresses[{i}]", f"{address} is not a valid IP or CIDR block")
    if cidr and resolution not in ("NONE", "STATIC"):
        found.error("addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types")
    names: set[str] = set()
    numbers: set[int] = set()
    for i, port in enumerate(spec.ports):
        path = f"ports[{i}]"
        name = port.name or ""
        if name in names:
            found.error(f"{path}.name", f"service entry port name {name!r} already defined")
        names.add(name)
        number = port.number or 0
        if number in numbers:
            found.error(f"{path}.number", f"service entry port {number} already defined")
        numbers.add(number)
        if port.target_port:
            check_port(found, f"{path}.targetPort", port.target_port)
        # The lab allocates no service IPs: Istio's auto-allocation is off by default, so a
        # TCP port without addresses gets Istio's warning.
        if not spec.addresses and (port.protocol or "TCP").upper() == "TCP":
            found.warn(
                path,
                "addresses are required for ports serving TCP (or unset) protocol when IP "
                "Autoallocation is not enabled",
            )
        if not is_dns1123_label(name):
            found.error(f"{path}.name", f"invalid port name: {name}")
        if port.protocol and port.protocol.upper() not in PROTOCOLS:
            found.error(f"{path}.protocol", f"unsupported protocol: {port.protocol}")
        check_port(found, f"{path}.number", port.number)
    if resolution == "NONE":
        if spec.endpoints:
            found.error("endpoints", "no endpoints should be provided for resolution type none")
        if selector is not None:
            found.warn(
                "workloadSelector",
                "workloadSelector should not be set when resolution mode is NONE",
            )
    elif resolution == "STATIC":
        for i, endpoint in enumerate(spec.endpoints):
            check_endpoint(found, f"endpoints[{i}]", endpoint, names, allow_fqdn=False)
    elif resolution in ("DNS", "DNS_ROUND_ROBIN"):
        if not spec.endpoints:
            for i, host in enumerate(spec.hosts):
                problem = fqdn_problem(host)
                if problem:
                    found.error(
                        f"hosts[{i}]",
                        "hosts must be FQDN or contain only prefix wildcards if no endpoints are "
                        f"provided for resolution mode {resolution}, {problem}",
                    )
                    break
        if resolution == "DNS_ROUND_ROBIN" and len(spec.endpoints) > 1:
            found.error(
                "endpoints", f"there must only be 0 or 1 endpoint for resolution mode {resolution}"
            )
        for i, endpoint in enumerate(spec.endpoints):
            path = f"endpoints[{i}]"
            address = endpoint.address or ""
            if not is_ip(address) and fqdn_problem(address):
                found.error(
                    f"{path}.address",
                    f"endpoint address {address!r} is not a valid FQDN or an IP address",
                )
            check_labels(found, f"{path}.labels", endpoint.labels)
            for name, number in endpoint.ports.items():
                if name not in names:
                    found.error(
                        f"{path}.ports",
                        f"endpoint port {number} is not defined by the service entry",
                    )
                if not is_dns1123_label(name):
                    found.error(f"{path}.ports", f"invalid port name: {name}")
                check_port(found, f"{path}.ports.{name}", number)
        if spec.addresses and len(spec.hosts) > 1:
            if any((p.protocol or "").upper() in TCP_PROTOCOLS for p in spec.ports):
                found.warn(
                    "hosts",
                    "service entry can not have more than one host specified simultaneously with "
                    "address and tcp port",
                )
    elif resolution == "DYNAMIC_DNS":
        if not spec.hosts:
            found.error(
                "hosts",
                f"at least one wildcard host must be provided for resolution type {resolution}",
            )
        for i, host in enumerate(spec.hosts):
            if not host.startswith("*"):
                found.error(
                    f"hosts[{i}]", f"host must be wildcarded for resolution mode {resolution}"
                )
        if spec.addresses:
            found.error(
                "addresses",
                f"addresses cannot be set for resolution type {resolution}. HTTP route domains will "
                "only be generated from the hosts field values",
            )
        if spec.endpoints:
            found.error(
                "endpoints",
                f"endpoints cannot be set for resolution type {resolution}. Destination IP address "
                "determined from hosts field values",
            )
        for i, port in enumerate(spec.ports):
            if (port.protocol or "").upper() not in ("HTTP", "TLS", "GRPC", "HTTP2"):
                found.error(
                    f"ports[{i}].protocol",
                    f"only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type {resolution}",
                )
        if spec.location not in (None, "MESH_EXTERNAL", "MESH_INTERNAL"):  # unset: MESH_EXTERNAL
            found.error(
                "location",
                f"location must be MESH_EXTERNAL or MESH_INTERNAL for resolution type {resolution}",
            )
        waypoint = resource.raw.get("metadata", {}).get("labels", {}).get(USE_WAYPOINT, "")
        if spec.location == "MESH_INTERNAL" and waypoint and waypoint.lower() != "none":
            found.error(
                "location",
                f"location MESH_INTERNAL with resolution type {resolution} is not supported when "
                "using waypoints",
            )
    if resolution != "NONE" and len(spec.hosts) > 1:
        for i, port in enumerate(spec.ports):
            protocol = (port.protocol or "").upper()
            if protocol not in HTTP_PROTOCOLS and protocol not in TLS_PROTOCOLS:
                found.error(f"ports[{i}]", "multiple hosts provided with non-HTTP, non-TLS ports")
                break
    check_export_to(found, "exportTo", resource.namespace, spec.export_to, service_entry=True)


def check_endpoint(
    found: Findings,
    path: str,
    endpoint: WorkloadEntry,
    port_names: Collection[str],
    *,
    allow_fqdn: bool,
) -> None:
    """Istio's validateWorkloadEntry for a STATIC ServiceEntry's endpoints."""
    address = endpoint.address or ""
    if not address:
        if not endpoint.network:
            found.error(f"{path}.address", "address is required")
            return
        found.warn(f"{path}.address", f"address is unset with network {endpoint.network!r}")
    unix = address.startswith(UNIX_PREFIX)
    if unix:
        socket = address[len(UNIX_PREFIX) :]
        if not socket:
            found.error(f"{path}.address", "unix address must not be empty")
        elif not socket.startswith("@") and (not socket.startswith("/") or socket.endswith("/")):
            found.error(f"{path}.address", f"{socket} is not an absolute path to a file")
        if endpoint.ports:
            found.error(f"{path}.ports", f"unix endpoint {address} must not include ports")
    elif address and not is_ip(address):
        if not allow_fqdn:
            found.error(
                f"{path}.address", f"endpoint address {address!r} is not a valid IP address"
            )
        elif fqdn_problem(address):
            found.error(
                f"{path}.address",
                f"endpoint address {address!r} is not a valid FQDN or an IP address",
            )
    for name, number in endpoint.ports.items():
        if name not in port_names:
            found.error(
                f"{path}.ports", f"endpoint port {number} is not defined by the service entry"
            )
        if not is_dns1123_label(name):
            found.error(f"{path}.ports", f"invalid port name: {name}")
        check_port(found, f"{path}.ports.{name}", number)
    check_labels(found, f"{path}.labels", endpoint.labels)
    if unix and len(port_names) != 1:
        found.error(path, "exactly 1 service port required for unix endpoints")
