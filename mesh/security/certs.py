"""Workload certificates, on the workload's side: its key, its CSR, a peer's verification.

Primitives:

- ``new_private_key`` (ECDSA P-256, Istio's ``ECC_SIGNATURE_ALGORITHM=ECDSA`` choice, or RSA
  2048, Istio's default) and ``private_key_pem`` — the key is made in the pod and never leaves
  it; ``make_csr(key, identity)``: a CSR whose only name is the SPIFFE URI SAN, with an empty
  subject, as Istio's agent sends it.
- ``parse_certificates`` (a PEM bundle → certificates, with a clear ``CertificateError`` for
  garbage), ``identity_of(cert)`` (its URI SAN as an ``Identity``).
- ``verify_peer(chain, roots, now, expected=...)`` → ``VerifiedPeer``: the chain leads to one
  of the roots, every certificate is valid at ``now``, the leaf carries one SPIFFE identity
  (and the expected one when given); its ``principal`` is what AuthorizationPolicy matches.
- ``renewal_time(issued_at, not_after, ratio, jitter)``: Istio's agent renews when
  ``ratio`` (``SECRET_GRACE_PERIOD_RATIO``, 0.5) of the lifetime is left, ± ``jitter``.

Key material and serial numbers come from the operating system's CSPRNG inside
``cryptography``, never from a passed-in RNG; time is always passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from mesh.security.identity import Identity, IdentityError, parse_uri

KeyType = Literal["ecdsa-p256", "rsa-2048"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
DEFAULT_KEY_TYPE: KeyType = "ecdsa-p256"
WORKLOAD_CERT_TTL = timedelta(hours=24)  # Istio's DEFAULT_WORKLOAD_CERT_TTL / SECRET_TTL
GRACE_PERIOD_RATIO = 0.5  # Istio's SECRET_GRACE_PERIOD_RATIO

Reason = Literal[
    "malformed", "expired", "not_yet_valid", "unknown_ca", "wrong_identity", "no_identity"
]


class CertificateError(ValueError):
    """A certificate, key or CSR that is refused; ``reason`` names the kind of problem."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# ---------------------------------------------------------------- keys and CSRs


def new_private_key(key_type: KeyType = DEFAULT_KEY_TYPE) -> PrivateKey:
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key type {key_type!r} (ecdsa-p256 or rsa-2048)")


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes, what: str = "private key") -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError("malformed", f"{what} is not a PEM private key: {exc}") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise CertificateError("malformed", f"{what} is not an ECDSA or RSA key")
    return key


def make_csr(key: PrivateKey, identity: Identity) -> bytes:
    """The CSR a workload sends: empty subject, the SPIFFE URI as its only SAN (PEM)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def load_csr(pem: bytes) -> x509.CertificateSigningRequest:
    """A CSR with a valid self-signature; raises ``CertificateError``."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise CertificateError("malformed", f"not a PEM certificate request: {exc}") from None
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError("malformed", f"certificate request unreadable: {exc}") from None
    if not valid:
        raise CertificateError(
            "malformed", "certificate request signature is invalid (not signed by its key)"
        )
    return csr


def uris_of(signed: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    """The URI SANs of a certificate or of a certificate request."""
    try:
        san = signed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


# ---------------------------------------------------------------- certificates


def parse_certificates(pem: bytes, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order; at least one."""
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CertificateError("malformed", f"{what} holds no PEM certificate")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertificateError("malformed", f"{what} is not valid PEM: {exc}") from None
    return certs


def certificates_pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def identity_of(cert: x509.Certificate) -> Identity:
    """The one SPIFFE identity in the certificate's URI SAN."""
    uris = [u for u in uris_of(cert) if u.startswith("spiffe://")]
    if len(uris) != 1:
        found = ", ".join(uris_of(cert)) or "none"
        raise CertificateError(
            "no_identity", f"certificate has no single SPIFFE URI SAN (URI SANs: {found})"
        )
    try:
        return parse_uri(uris[0])
    except IdentityError as exc:
        raise CertificateError("no_identity", str(exc)) from None


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def check_validity(cert: x509.Certificate, now: datetime, what: str) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateError(
            "not_yet_valid",
            f"{what} is not valid yet: valid from {_utc(cert.not_valid_before_utc)}, "
            f"now is {_utc(now)}",
        )
    if now > cert.not_valid_after_utc:
        raise CertificateError(
            "expired",
            f"{what} expired at {_utc(cert.not_valid_after_utc)}, now is {_utc(now)}",
        )


@dataclass(frozen=True, slots=True)
class VerifiedPeer:
    identity: Identity
    leaf: x509.Certificate

    @property
    def principal(self) -> str:
        return self.identity.principal

    @property
    def not_after(self) -> datetime:
        return self.leaf.not_valid_after_utc


def verify_peer(
    chain: Sequence[x509.Certificate] | bytes,
    roots: Sequence[x509.Certificate],
    now: datetime,
    expected: Sequence[Identity] = (),
) -> VerifiedPeer:
    """Verify a peer's chain (leaf first, then intermediates) at ``now``: it leads to one of
    ``roots``, no certificate is expired or not yet valid, the leaf names one SPIFFE identity,
    one of ``expected`` when given. Raises ``CertificateError`` saying which check failed."""
    certs = parse_certificates(chain, "peer chain") if isinstance(chain, bytes) else list(chain)
    if not certs:
        raise CertificateError("malformed", "peer sent no certificate")
    if not roots:
        raise CertificateError("unknown_ca", "no trusted root to verify against")
    leaf, intermediates = certs[0], certs[1:]
    # Dates first, with the clearer message; then the signature chain.
    check_validity(leaf, now, f"peer certificate (serial {leaf.serial_number:x})")
    for i, cert in enumerate(intermediates):
        check_validity(cert, now, f"intermediate certificate {i + 1} of the peer's chain")
    identity = identity_of(leaf)
    verifier = PolicyBuilder().store(Store(list(roots))).time(now).build_client_verifier()
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        issuer = leaf.issuer.rfc4514_string() or "(empty)"
        raise CertificateError(
            "unknown_ca",
            f"peer certificate for {identity.principal} is not signed by the mesh CA "
            f"(issuer {issuer}): {exc}",
        ) from None
    if expected and identity not in expected:
        names = ", ".join(e.principal for e in expected)
        raise CertificateError(
            "wrong_identity",
            f"peer certificate is for {identity.principal}, expected {names}",
        )
    return VerifiedPeer(identity, leaf)


def renewal_time(
    issued_at: datetime,
    not_after: datetime,
    ratio: float = GRACE_PERIOD_RATIO,
    jitter: float = 0.0,
) -> datetime:
    """When to ask for a new certificate: ``ratio`` (± ``jitter``, clamped to 0..1) of the
    lifetime before ``not_after``, the lifetime counted from ``issued_at`` (when the workload
    received it: the CA backdates ``notBefore`` for clock skew)."""
    grace = min(1.0, max(0.0, ratio + jitter))
    return not_after - (not_after - issued_at) * grace


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``cert`` (name and signature)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
