"""Workload certificates on the workload's side: its key and CSR, verifying a peer at a given
time (each refusal with its reason), renewal at half-life, and the XFCC details."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mesh.security.ca import MeshCA
from mesh.security.certs import (
    CertificateError,
    load_csr,
    load_private_key,
    make_csr,
    new_private_key,
    private_key_pem,
    renewal_time,
    uris_of,
    verify_peer,
)
from mesh.security.identity import Identity
from tests.helpers import CERT_NOW, HTTPBIN_ID, SLEEP_ID

NOW, SLEEP, HTTPBIN = CERT_NOW, SLEEP_ID, HTTPBIN_ID


def issue(ca: MeshCA, identity: Identity = SLEEP, ttl: timedelta = timedelta(hours=24)) -> bytes:
    return ca.sign(make_csr(new_private_key(), identity), identity, NOW, ttl).cert_chain_pem


def test_the_key_and_csr_a_workload_makes() -> None:
    key = new_private_key()
    assert key.curve.name == "secp256r1"
    assert load_private_key(private_key_pem(key)).private_numbers() == key.private_numbers()
    csr = load_csr(make_csr(key, SLEEP))
    assert csr.subject == x509.Name([])
    assert uris_of(csr) == ["spiffe://cluster.local/ns/foo/sa/sleep"]


def refusal(chain: bytes, roots: list[x509.Certificate], now: datetime, **kw) -> CertificateError:
    with pytest.raises(CertificateError) as refused:
        verify_peer(chain, roots, now, **kw)
    return refused.value


def test_expired_and_not_yet_valid_certificates_are_refused(ca: MeshCA) -> None:
    chain = issue(ca)
    expired = refusal(chain, [ca.root], NOW + timedelta(hours=25))
    assert expired.reason == "expired"
    assert "expired at 2026-03-02 12:00:00 UTC, now is 2026-03-02 13:00:00 UTC" in str(expired)
    early = refusal(chain, [ca.root], NOW - timedelta(minutes=3))
    assert early.reason == "not_yet_valid"
    assert "valid from 2026-03-01 11:58:00 UTC" in str(early)


def test_a_certificate_from_another_ca_is_refused(ca: MeshCA) -> None:
    other = MeshCA.create(NOW)
    refused = refusal(issue(other), [ca.root], NOW)
    assert refused.reason == "unknown_ca"
    assert str(refused).startswith(
        "peer certificate for cluster.local/ns/foo/sa/sleep is not signed by the mesh CA"
    )


def test_the_wrong_identity_is_refused(ca: MeshCA) -> None:
    refused = refusal(issue(ca, HTTPBIN), [ca.root], NOW, expected=[SLEEP])
    assert (refused.reason, str(refused)) == (
        "wrong_identity",
        "peer certificate is for cluster.local/ns/foo/sa/httpbin, expected "
        "cluster.local/ns/foo/sa/sleep",
    )
    assert verify_peer(issue(ca, HTTPBIN), [ca.root], NOW, expected=[SLEEP, HTTPBIN]).identity == (
        HTTPBIN
    )


def test_a_certificate_without_spiffe_identity_is_refused(ca: MeshCA) -> None:
    key = new_private_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "sleep")]))
        .issuer_name(ca.root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("sleep.foo.svc.cluster.local")]),
            critical=False,
        )
        .sign(ca.signing_key, hashes.SHA256())
    )
    refused = refusal(cert.public_bytes(serialization.Encoding.PEM), [ca.root], NOW)
    assert (refused.reason, str(refused)) == (
        "no_identity",
        "certificate has no single SPIFFE URI SAN (URI SANs: none)",
    )


@pytest.mark.parametrize(
    ("garbage", "message"),
    [
        (b"", "peer chain holds no PEM certificate"),
        (b"\x00\xff garbage", "peer chain holds no PEM certificate"),
        (
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            "peer chain is not valid PEM",
        ),
    ],
)
def test_garbage_pem_is_refused(ca: MeshCA, garbage: bytes, message: str) -> None:
    refused = refusal(garbage, [ca.root], NOW)
    assert refused.reason == "malformed" and str(refused).startswith(message)


def test_a_garbage_private_key_is_refused() -> None:
    with pytest.raises(CertificateError, match="private key is not a PEM private key"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_renewal_at_half_life_with_settable_ratio_and_jitter() -> None:
    issued, expires = NOW, NOW + timedelta(hours=24)
    assert renewal_time(issued, expires) == NOW + timedelta(hours=12)
    assert renewal_time(issued, expires, ratio=0.25) == NOW + timedelta(hours=18)
    assert renewal_time(issued, expires, jitter=0.01) == NOW + timedelta(hours=12) - timedelta(
        minutes=14, seconds=24
    )
    # A two-minute certificate for a rotation demo: renewed one minute after it arrived.
    assert renewal_time(issued, NOW + timedelta(minutes=2)) == NOW + timedelta(minutes=1)
    assert renewal_time(issued, expires, ratio=0.9, jitter=0.5) == issued  # clamped to 1
