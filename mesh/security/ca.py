"""The mesh CA (the manager's role, as istiod's): a root, and workload certificates from CSRs.

Primitives:

- ``MeshCA.create(now)``: a self-signed root, 10 years (Istio's
  ``CITADEL_SELF_SIGNED_CA_CERT_TTL``), ``O=cluster.local`` as Istio names its own;
- ``MeshCA.load(files, now)``: a supplied CA in Istio's ``cacerts`` layout —
  ``ca-cert.pem`` (the signing certificate), ``ca-key.pem`` (its key), ``root-cert.pem`` (the
  trust anchor) and ``cert-chain.pem`` (``ca-cert`` up to the root; may be left out when
  ``ca-cert`` is the root) — every file checked, with an error that names the file and the
  problem (``CAError``);
- ``MeshCA.files()``: the same layout, to keep (the shell writes it where only the manager
  reads it);
- ``MeshCA.sign(csr_pem, entitled, now, ttl)`` → ``IssuedCertificate``: refuses a CSR that is
  malformed or asks for an identity other than ``entitled`` (the caller passes the identity the
  requester may have: the pod's service account); issues Istio's workload certificate — empty
  subject, the SPIFFE URI as a critical SAN, ``notBefore`` two minutes back for clock skew,
  ``notAfter`` at ``now + ttl`` but never past the CA's own, digital signature and key
  encipherment, server and client auth.

Istio's CA signs with the caller's authenticated identity whatever the CSR says; the lab refuses
a CSR naming another identity instead, so the mistake (or the attack) is visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesh.security.certs import (
    DEFAULT_KEY_TYPE,
    WORKLOAD_CERT_TTL,
    CertificateError,
    KeyType,
    PrivateKey,
    certificates_pem,
    check_validity,
    load_csr,
    load_private_key,
    new_private_key,
    parse_certificates,
    private_key_pem,
    signed_by,
    uris_of,
)
from mesh.security.identity import TRUST_DOMAIN, Identity

ROOT_CERT_TTL = timedelta(days=3650)
CLOCK_SKEW_GRACE = timedelta(minutes=2)  # Istio's ClockSkewGracePeriod
CA_CERT_FILE = "ca-cert.pem"
CA_KEY_FILE = "ca-key.pem"
ROOT_CERT_FILE = "root-cert.pem"
CERT_CHAIN_FILE = "cert-chain.pem"
CA_FILES = (CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE, CERT_CHAIN_FILE)


class CAError(ValueError):
    """A CA that cannot be used (a missing, corrupted or inconsistent file), or a refused
    signing request. The message names the file or the identity and what is wrong."""


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """What the CA answers a CSR with (public material only)."""

    identity: Identity
    cert_chain_pem: bytes  # the workload certificate, then the intermediates (not the root)
    root_cert_pem: bytes  # the trust anchor, to verify peers
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True, slots=True)
class MeshCA:
    signing_cert: x509.Certificate
    signing_key: PrivateKey
    chain: tuple[x509.Certificate, ...]  # signing_cert first, up to (and including) the root
    root: x509.Certificate

    @classmethod
    def create(
        cls,
        now: datetime,
        *,
        trust_domain: str = TRUST_DOMAIN,
        key_type: KeyType = DEFAULT_KEY_TYPE,
        ttl: timedelta = ROOT_CERT_TTL,
    ) -> MeshCA:
        key = new_private_key(key_type)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
        public = key.public_key()
        root = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW_GRACE)
            .not_valid_after(now + ttl)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(root, key, (root,), root)

    @classmethod
    def load(cls, files: Mapping[str, bytes | None], now: datetime) -> MeshCA:
        """Load Istio's ``cacerts`` files (name → content, None when missing)."""
        for required in (CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE):
            if not files.get(required):
                raise CAError(f"{required} is missing or empty")
        try:
            signing = _one(files[CA_CERT_FILE] or b"", CA_CERT_FILE)
            key = load_private_key(files[CA_KEY_FILE] or b"", CA_KEY_FILE)
            root = _one(files[ROOT_CERT_FILE] or b"", ROOT_CERT_FILE)
            chain_pem = files.get(CERT_CHAIN_FILE)
            chain = parse_certificates(chain_pem, CERT_CHAIN_FILE) if chain_pem else [signing]
        except CertificateError as exc:
            raise CAError(str(exc)) from None
        # Public keys compare by value, and a certificate of another key type (Ed25519...)
        # is simply not equal (it has no public_numbers to compare).
        if key.public_key() != signing.public_key():
            raise CAError(f"{CA_KEY_FILE} is not the key of {CA_CERT_FILE}")
        if chain[0] != signing:
            raise CAError(f"{CERT_CHAIN_FILE} must start with {CA_CERT_FILE}")
        if chain[-1] != root:
            chain.append(root)
        for cert, issuer in zip(chain, chain[1:], strict=False):
            if not signed_by(cert, issuer):
                same_name = " (same name, another key)" if cert.issuer == issuer.subject else ""
                raise CAError(
                    f"{CERT_CHAIN_FILE}: {cert.subject.rfc4514_string()} is not signed by "
                    f"{issuer.subject.rfc4514_string()}{same_name} (the chain must lead to "
                    f"{ROOT_CERT_FILE})"
                )
        if not signed_by(root, root):
            raise CAError(f"{ROOT_CERT_FILE} is not a self-signed root certificate")
        if not _is_ca(signing):
            raise CAError(f"{CA_CERT_FILE} is not a CA certificate (basicConstraints CA:TRUE)")
        try:
            for cert, name in ((signing, CA_CERT_FILE), (root, ROOT_CERT_FILE)):
                check_validity(cert, now, name)
        except CertificateError as exc:
            raise CAError(str(exc)) from None
        return cls(signing, key, tuple(chain), root)

    def files(self) -> dict[str, bytes]:
        """Istio's ``cacerts`` layout. ``ca-key.pem`` is the CA's private key: keep it where
        only the CA reads it."""
        return {
            CA_CERT_FILE: certificates_pem([self.signing_cert]),
            CA_KEY_FILE: private_key_pem(self.signing_key),
            ROOT_CERT_FILE: certificates_pem([self.root]),
            CERT_CHAIN_FILE: certificates_pem(self.chain),
        }

    @property
    def root_pem(self) -> bytes:
        return certificates_pem([self.root])

    def sign(
        self,
        csr_pem: bytes,
        entitled: Identity,
        now: datetime,
        ttl: timedelta = WORKLOAD_CERT_TTL,
    ) -> IssuedCertificate:
        """A workload certificate for ``entitled``; raises ``CAError`` when refused."""
        try:
            csr = load_csr(csr_pem)
        except CertificateError as exc:
            raise CAError(f"CSR refused: {exc}") from None
        asked = uris_of(csr)
        others = [uri for uri in asked if uri != entitled.uri]
        if others:
            raise CAError(
                f"CSR refused: it asks for {', '.join(others)}, but the requester may only have "
                f"{entitled.uri}"
            )
        if ttl <= timedelta(0):
            raise CAError(f"certificate lifetime must be positive (got {ttl})")
        if now >= self.signing_cert.not_valid_after_utc:
            raise CAError(
                f"the CA certificate expired at {self.signing_cert.not_valid_after_utc}: "
                "it cannot sign"
            )
        not_after = min(now + ttl, self.signing_cert.not_valid_after_utc)
        not_before = now - CLOCK_SKEW_GRACE
        public = csr.public_key()
        if not isinstance(public, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
            raise CAError("CSR refused: only ECDSA and RSA keys are accepted")
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.signing_cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(entitled.uri)]),
                critical=True,  # the subject is empty (RFC 5280, SPIFFE)
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.signing_key.public_key()),
                critical=False,
            )
            .sign(self.signing_key, hashes.SHA256())
        )
        intermediates = [c for c in self.chain if c != self.root]
        return IssuedCertificate(
            identity=entitled,
            cert_chain_pem=certificates_pem([leaf, *intermediates]),
            root_cert_pem=self.root_pem,
            not_before=not_before,
            not_after=not_after,
        )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates (and CRLs); a workload key signs and encrypts (Istio's)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _one(pem: bytes, name: str) -> x509.Certificate:
    certs = parse_certificates(pem, name)
    if len(certs) != 1:
        raise CertificateError("malformed", f"{name} must hold one certificate, not {len(certs)}")
    return certs[0]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False
