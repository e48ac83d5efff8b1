"""Gateway: Istio's webhook rules (``ValidateGateway``, ``validateServer``,
``validateServerPort``, ``validateServerBind``, ``validateTLSOptions`` in validation.go):
servers, hosts (``namespace/host``), ports and protocols, bind addresses, TLS settings."""

from __future__ import annotations

import posixpath

from mesh.config.issues import Issue
from mesh.config.model import Gateway, Port, Server, ServerTLSSettings
from mesh.config.resource import Resource
from mesh.config.validate.values import (
    Findings,
    check_port,
    is_dns1123_label,
    is_ip,
    partial_wildcard_problem,
    wildcard_domain_problem,
)

UNIX_PREFIX = "unix://"
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
# Istio's protocol.Parse: every name it knows (case-insensitive).
PROTOCOLS = HTTP_PROTOCOLS | TLS_PROTOCOLS | frozenset({"TCP", "UDP", "MONGO", "REDIS", "MYSQL"})
SERVED_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
# Envoy's (BoringSSL's) cipher suite names Istio accepts (pkg/config/security).
CIPHER_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
        "P-224",
        "P-256",
        "P-521",
        "P-384",
        "X25519",
        "X25519MLKEM768",
    }
)


def valid_cipher(cipher: str) -> bool:
    """Istio's IsValidCipherSuite: a known name, ALL, or an expression (``-x``, ``+x``)."""
    return cipher in ("", "ALL") or not cipher[0].isalnum() or cipher in CIPHER_SUITES


def protocol_of(port: Port | None) -> str:
    return (port.protocol or "").upper() if port is not None else ""


def check_gateway(resource: Resource, out: list[Issue]) -> None:
    spec: Gateway = resource.spec
    found = Findings(resource, out)
    if not is_dns1123_label(resource.name):
        found.error("", f"invalid gateway name: {resource.name!r}")
    if not spec.servers:
        found.error("servers", "gateway must have at least one server")
    port_names: set[str] = set()
    for i, server in enumerate(spec.servers):
        path = f"servers[{i}]"
        check_server(found, path, server)
        if server.port is None:
            continue
        name = server.port.name or ""
        if name in port_names:
            found.error(
                f"{path}.port.name", f"port names in servers must be unique: duplicate name {name}"
            )
        port_names.add(name)
        if (
            protocol_of(server.port) not in HTTP_PROTOCOLS
            and server.tls
            and server.tls.https_redirect
        ):
            found.warn(f"{path}.tls", "tls.httpsRedirect should only be used with http servers")


def check_server(found: Findings, path: str, server: Server) -> None:
    if not server.hosts:
        found.error(f"{path}.hosts", "server config must contain at least one host")
    for k, host in enumerate(server.hosts):
        check_server_host(found, f"{path}.hosts[{k}]", host)
    port_ok = check_server_port(found, f"{path}.port", server.port, server.bind or "")
    bind = server.bind or ""
    if bind.startswith(UNIX_PREFIX):
        socket = bind[len(UNIX_PREFIX) :]
        if not socket:
            found.error(f"{path}.bind", "unix address must not be empty")
        elif not socket.startswith("@") and (not posixpath.isabs(socket) or socket.endswith("/")):
            found.error(f"{path}.bind", f"{socket} is not an absolute path to a file")
        if server.port is not None and server.port.number:
            found.error(f"{path}.port.number", "port number must be 0 for unix domain socket")
    elif bind and not is_ip(bind):
        found.error(f"{path}.bind", f"{bind} is not a valid IP")
    if server.tls is not None:
        check_server_tls(found, f"{path}.tls", server.tls)
    if port_ok:
        protocol = protocol_of(server.port)
        if protocol in TLS_PROTOCOLS and server.tls is None:
            found.error(f"{path}.tls", "server must have TLS settings for HTTPS/TLS protocols")
        elif protocol not in TLS_PROTOCOLS and server.tls is not None:
            tls = server.tls
            if protocol in HTTP_PROTOCOLS:
                passthrough = tls.mode in (None, "PASSTHROUGH")
                if (
                    not passthrough
                    or tls.ca_certificates
                    or tls.private_key
                    or tls.server_certificate
                ):
                    found.error(
                        f"{path}.tls", "server cannot have TLS settings for plain text HTTP ports"
                    )
            else:
                found.error(
                    f"{path}.tls", "server cannot have TLS settings for non HTTPS/TLS ports"
                )
        if protocol in PROTOCOLS and protocol not in SERVED_PROTOCOLS:
            found.lab(
                f"{path}.port.protocol",
                f"{protocol} servers are not served by the lab (Lab decision 7)",
            )


def check_server_host(found: Findings, path: str, host: str) -> None:
    """Istio's ValidateNamespaceSlashWildcardHostname for gateways: ``[ns/]dnsName``."""
    namespace, sep, name = host.partition("/")
    if not sep:
        _check_host_part(found, path, host)
        return
    if not namespace or not name:
        found.error(path, "config namespace and dnsName in host entry cannot be empty")
    if namespace not in ("*", ".") and not is_dns1123_label(namespace):
        found.error(path, f"invalid namespace value {namespace!r} in gateway")
    _check_host_part(found, path, name)


def _check_host_part(found: Findings, path: str, host: str) -> None:
    if host != "*" and "." not in host:
        found.error(path, f"short names (non FQDN) are not allowed: {host!r}")
    problem = wildcard_domain_problem(host)
    if problem and not is_ip(host):
        found.error(path, problem)
    partial = partial_wildcard_problem(host)
    if partial:
        found.error(path, partial)


def check_server_port(found: Findings, path: str, port: Port | None, bind: str) -> bool:
    """Istio's validateServerPort; True when the port has no error."""
    if port is None:
        found.error(path, "port is required")
        return False
    before = len(found.out)
    if protocol_of(port) not in PROTOCOLS:
        found.error(
            f"{path}.protocol",
            f"invalid protocol {port.protocol or ''!r}, supported protocols are HTTP, HTTP2, GRPC, "
            "GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
        )
    if (port.number or 0) > 0 or not bind.startswith(UNIX_PREFIX):
        check_port(found, f"{path}.number", port.number)
    if port.target_port:
        found.error(f"{path}.targetPort", "targetPort has no impact on Gateways")
    if not port.name:
        found.error(f"{path}.name", "port name must be set")
    return not any(i.is_error for i in found.out[before:])


def check_server_tls(found: Findings, path: str, tls: ServerTLSSettings) -> None:
    """Istio's validateTLSOptions."""
    if tls.min_protocol_version in ("TLSV1_0", "TLSV1_1") and not tls.cipher_suites:
        found.warn(
            path,
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they no "
            "longer include compatible ciphers.",
        )
    invalid = sorted({c for c in tls.cipher_suites if not valid_cipher(c)})
    seen: set[str] = set()
    duplicate: set[str] = set()
    for cipher in tls.cipher_suites:
        if valid_cipher(cipher):
            (duplicate if cipher in seen else seen).add(cipher)
    if invalid:
        found.warn(f"{path}.cipherSuites", f"ignoring invalid cipher suites: {invalid}")
    if duplicate:
        found.warn(f"{path}.cipherSuites", f"ignoring duplicate cipher suites: {sorted(duplicate)}")
    mode = tls.mode
    if mode == "ISTIO_MUTUAL":
        for present, what in (
            (tls.server_certificate, "server certificate"),
            (tls.private_key, "private key"),
            (tls.ca_certificates, "CA bundle"),
            (tls.tls_certificates, "tlsCertificates"),
            (tls.credential_name, "credentialName"),
            (tls.credential_names, "credentialNames"),
        ):
            if present:
                found.error(path, f"ISTIO_MUTUAL TLS cannot have associated {what}")
        return
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and (
        tls.ca_crl
        or tls.server_certificate
        or tls.private_key
        or tls.ca_certificates
        or tls.tls_certificates
        or tls.credential_name
        or tls.credential_names
    ):
        found.warn(path, f"{mode} mode does not use certificates, they will be ignored")
    sources = sum(
        1
        for present in (
            tls.server_certificate and tls.private_key,
            tls.credential_name,
            tls.credential_names,
            tls.tls_certificates,
        )
        if present
    )
    if sources > 1:
        found.error(
            path,
            "only one of credential_name, credential_names, server_certificate/private_key, "
            "tls_certificates should be specified",
        )
    terminating = mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")
    if terminating and (tls.credential_name or tls.credential_names):
        return  # the certificates come from the credential
    if terminating:
        prefix = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
        if mode != "SIMPLE" and not tls.ca_certificates:
            found.error(path, f"{prefix} requires a client CA bundle")
        if len(tls.tls_certificates) > 2:
            found.warn(path, f"{prefix} can support up to 2 server certificates")
        certificates = tls.tls_certificates or (tls,)
        for certificate in certificates:
            if not certificate.server_certificate:
                found.error(path, f"{prefix} requires a server certificate")
            if not certificate.private_key:
                found.error(path, f"{prefix} requires a private key")
    if tls.ca_crl:
        if tls.credential_name:
            found.error(
                path,
                "CRL is not supported with credentialName. CRL has to be specified in the credential",
            )
        if mode == "SIMPLE":
            found.error(path, "CRL is not supported with SIMPLE TLS")
