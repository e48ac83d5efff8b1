"""A TLS connection's certificates as Python's ``ssl`` reports them, read without
``cryptography``.

The sidecar terminates and originates mTLS with the standard library's ``ssl`` (OpenSSL
verifies the chain against the mesh root and the validity dates); importing ``cryptography``
there would cost far more memory than ``ssl`` itself (``bench/import_rss.py``). What it still
needs from a verified connection is read here from ``SSLObject.getpeercert()`` (a dict) and
``getpeercert(binary_form=True)`` (DER bytes):

Primitives: ``uri_sans(cert)``, ``peer_identity(cert)`` (the one SPIFFE identity, else
``IdentityError``) and ``client_cert_details(local_uris, peer, peer_der)`` → the
``X-Forwarded-Client-Cert`` fields, with the subject written as Envoy writes it (RFC 2253).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from mesh.security.identity import Identity, IdentityError, parse_uri
from mesh.security.xfcc import ClientCertDetails

PeerCert = Mapping[str, Any]

# OpenSSL's long attribute names (as ``ssl`` reports them) → RFC 2253 short names.
_SHORT_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def _sans(cert: PeerCert, kind: str) -> tuple[str, ...]:
    return tuple(value for name, value in cert.get("subjectAltName", ()) if name == kind)


def uri_sans(cert: PeerCert) -> tuple[str, ...]:
    return _sans(cert, "URI")


def peer_identity(cert: PeerCert) -> Identity:
    """The SPIFFE identity of a verified peer certificate."""
    uris = [uri for uri in uri_sans(cert) if uri.startswith("spiffe://")]
    if len(uris) != 1:
        raise IdentityError(
            f"peer certificate has no single SPIFFE URI SAN (URI SANs: {', '.join(uri_sans(cert)) or 'none'})"
        )
    return parse_uri(uris[0])


def _escape(value: str) -> str:
    escaped = "".join(f"\\{c}" if c in ',+"\\<>;' else c for c in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def subject_rfc2253(cert: PeerCert) -> str:
    """The subject as OpenSSL's RFC 2253 printing gives it: last RDN first, ``CN=a,O=b``."""
    rdns = []
    for rdn in reversed(cert.get("subject", ())):
        rdns.append(
            "+".join(f"{_SHORT_NAMES.get(name, name)}={_escape(value)}" for name, value in rdn)
        )
    return ",".join(rdns)


def client_cert_details(
    local_uris: Sequence[str], peer: PeerCert, peer_der: bytes
) -> ClientCertDetails:
    """What Envoy writes into XFCC for a connection: the URI SANs of the server's own
    certificate, the SHA-256 of the client's certificate, its subject, URI and DNS SANs."""
    return ClientCertDetails(
        by=tuple(local_uris),
        hash=hashlib.sha256(peer_der).hexdigest(),
        subject=subject_rfc2253(peer),
        uris=uri_sans(peer),
        dns=_sans(peer, "DNS"),
    )
