"""``X-Forwarded-Client-Cert`` as Envoy's connection manager writes it.

Primitives: ``ClientCertDetails`` (what Envoy reads of a connection: its own certificate's
URI SANs, the SHA-256 of the peer's certificate, the peer's subject, URI and DNS SANs) and
``forward_client_cert(mode, incoming, details)`` → the header value to send on (None: no
header).

Modes are Envoy's ``forward_client_cert_details``; Istio's sidecar inbound uses
``APPEND_FORWARD`` with ``set_current_client_cert_details`` Subject, URI and DNS (its ingress
gateway uses ``SANITIZE_SET``). Over a connection without a client certificate any incoming
header is removed (so a plaintext client cannot forge one). The element looks like
``By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=<hex>;Subject="";URI=spiffe://cluster.local/ns/foo/sa/sleep``,
elements of several hops joined by ``,``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

XFCC_HEADER = "x-forwarded-client-cert"

ForwardMode = Literal[
    "SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD", "SANITIZE_SET", "ALWAYS_FORWARD_ONLY"
]
SIDECAR_INBOUND_MODE: ForwardMode = "APPEND_FORWARD"
GATEWAY_MODE: ForwardMode = "SANITIZE_SET"


@dataclass(frozen=True, slots=True)
class ClientCertDetails:
    by: tuple[str, ...]  # URI SANs of the local (server's own) certificate
    hash: str  # hex SHA-256 of the peer certificate (DER)
    subject: str  # the peer's subject, RFC 4514 ("" for Istio's workload certificates)
    uris: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()

    def element(self) -> str:
        """Envoy's order: By, Hash, then Subject, URI and DNS (Istio's inbound settings)."""
        parts = [f"By={uri}" for uri in self.by]
        if self.hash:
            parts.append(f"Hash={self.hash}")
        parts.append(f'Subject="{self.subject}"')  # present even when empty
        parts.extend(f"URI={uri}" for uri in self.uris or ("",))
        parts.extend(f"DNS={name}" for name in self.dns)
        return ";".join(parts)


def forward_client_cert(
    mode: ForwardMode, incoming: str | None, details: ClientCertDetails | None
) -> str | None:
    """The header to send upstream. ``details`` None: the connection is not mutual TLS."""
    if mode == "ALWAYS_FORWARD_ONLY":
        return incoming
    if mode == "SANITIZE" or details is None:
        return None
    if mode == "FORWARD_ONLY":
        return incoming
    element = details.element()
    if mode == "APPEND_FORWARD" and incoming:
        return f"{incoming},{element}"
    return element
