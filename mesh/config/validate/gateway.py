"""Gateway: the per-resource checks (servers, ports, protocols, TLS settings, hosts)."""

from __future__ import annotations

from mesh.config import hosts as hostnames
from mesh.config.issues import Issue
from mesh.config.model import Gateway
from mesh.config.resource import Resource
from mesh.config.validate.values import WILDCARD_HOST, Findings

SERVER_PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS")


def check_gateway(resource: Resource, out: list[Issue]) -> None:
    spec: Gateway = resource.spec
    found = Findings(resource, out)
    if not spec.servers:
        found.error("servers", "a Gateway needs at least one server")
    port_names: dict[str, int] = {}
    for i, server in enumerate(spec.servers):
        path = f"servers[{i}]"
        port = server.port
        if port is None:
            found.error(f"{path}.port", "port is required")
        else:
            if port.number is None or not 0 < port.number < 65536:
                found.error(f"{path}.port.number", "port number must be between 1 and 65535")
            if not port.protocol:
                found.error(f"{path}.port.protocol", "protocol is required")
            elif port.protocol.upper() not in SERVER_PROTOCOLS:
                found.error(
                    f"{path}.port.protocol",
                    f"unknown protocol {port.protocol!r} (one of {', '.join(SERVER_PROTOCOLS)})",
                )
            elif port.protocol.upper() not in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB"):
                found.info(
                    f"{path}.port.protocol",
                    f"{port.protocol} servers are not served by the lab (HTTP only)",
                )
            if not port.name:
                found.error(f"{path}.port.name", "port name is required")
            elif port.name in port_names:
                found.error(
                    f"{path}.port.name",
                    f"port name {port.name!r} is used twice (servers[{port_names[port.name]}])",
                )
            else:
                port_names[port.name] = i
            protocol = (port.protocol or "").upper()
            if protocol in ("HTTPS", "TLS") and server.tls is None:
                found.error(f"{path}.tls", f"{protocol} servers need tls settings")
            if (
                protocol == "HTTP"
                and server.tls is not None
                and (server.tls.mode is not None or server.tls.credential_name)
            ):
                found.error(f"{path}.tls", "plain HTTP servers may only set tls.httpsRedirect")
        if not server.hosts:
            found.error(f"{path}.hosts", "at least one host is required")
        for k, host in enumerate(server.hosts):
            if not WILDCARD_HOST.match(hostnames.strip_namespace(host)):
                found.error(
                    f"{path}.hosts[{k}]",
                    f"{host!r} is not a valid host (a wildcard only as the left-most label)",
                )
