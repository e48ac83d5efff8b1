"""The mesh CA: a root made or loaded from Istio's cacerts layout, workload certificates from
CSRs, and every refusal a trainee can provoke (corrupted files, another pod's identity)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesh.security.ca import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    CERT_CHAIN_FILE,
    ROOT_CERT_FILE,
    CAError,
    MeshCA,
)
from mesh.security.certs import make_csr, new_private_key, parse_certificates, verify_peer
from tests.helpers import CERT_NOW, HTTPBIN_ID, SLEEP_ID

NOW, SLEEP, HTTPBIN = CERT_NOW, SLEEP_ID, HTTPBIN_ID


def test_root_is_a_ten_year_ca_named_after_the_trust_domain(ca: MeshCA) -> None:
    root = ca.root
    assert root.not_valid_after_utc - NOW == timedelta(days=3650)
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "cluster.local"
    )
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_workload_certificate_is_istios(ca: MeshCA) -> None:
    key = new_private_key()
    issued = ca.sign(make_csr(key, SLEEP), SLEEP, NOW)
    (leaf,) = parse_certificates(issued.cert_chain_pem)
    assert leaf.subject == x509.Name([])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/foo/sa/sleep"
    ]
    assert leaf.not_valid_before_utc == NOW - timedelta(minutes=2)  # clock skew grace
    assert leaf.not_valid_after_utc == NOW + timedelta(hours=24)
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert issued.root_cert_pem == ca.root_pem
    assert verify_peer(issued.cert_chain_pem, [ca.root], NOW).principal == (
        "cluster.local/ns/foo/sa/sleep"
    )


def test_lifetime_is_settable_and_never_outlives_the_ca() -> None:
    short_lived_ca = MeshCA.create(NOW, ttl=timedelta(hours=1))
    issued = short_lived_ca.sign(
        make_csr(new_private_key(), SLEEP), SLEEP, NOW, timedelta(hours=24)
    )
    assert issued.not_after == short_lived_ca.root.not_valid_after_utc
    quick = short_lived_ca.sign(
        make_csr(new_private_key(), SLEEP), SLEEP, NOW, timedelta(minutes=2)
    )
    assert quick.not_after == NOW + timedelta(minutes=2)


def test_rsa_workload_keys_are_signed_too(ca: MeshCA) -> None:
    issued = ca.sign(make_csr(new_private_key("rsa-2048"), HTTPBIN), HTTPBIN, NOW)
    assert verify_peer(issued.cert_chain_pem, [ca.root], NOW).identity == HTTPBIN


# ---------------------------------------------------------------- refusals


def test_a_csr_for_another_identity_is_refused(ca: MeshCA) -> None:
    csr = make_csr(new_private_key(), HTTPBIN)
    with pytest.raises(CAError) as refused:
        ca.sign(csr, SLEEP, NOW)
    assert str(refused.value) == (
        "CSR refused: it asks for spiffe://cluster.local/ns/foo/sa/httpbin, but the requester "
        "may only have spiffe://cluster.local/ns/foo/sa/sleep"
    )


def test_a_csr_not_signed_by_its_key_is_refused(ca: MeshCA) -> None:
    forged = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(new_private_key(), hashes.SHA256())
    )
    # Swap the public key's bytes for another key's: the self-signature no longer verifies.
    der = bytearray(forged.public_bytes(serialization.Encoding.DER))
    other = (
        new_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    mine = forged.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    start = der.find(mine)
    der[start : start + len(mine)] = other
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CAError, match="signature is invalid"):
        ca.sign(pem, SLEEP, NOW)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ],
)
def test_a_garbage_csr_is_refused(ca: MeshCA, garbage: bytes) -> None:
    with pytest.raises(CAError, match="CSR refused: not a PEM certificate request"):
        ca.sign(garbage, SLEEP, NOW)


def test_an_expired_ca_does_not_sign() -> None:
    old = MeshCA.create(NOW - timedelta(days=2), ttl=timedelta(days=1))
    with pytest.raises(CAError, match="the CA certificate expired"):
        old.sign(make_csr(new_private_key(), SLEEP), SLEEP, NOW)


# ---------------------------------------------------------------- Istio's cacerts layout


def intermediate_ca(root: MeshCA) -> dict[str, bytes]:
    """A plugged-in CA as Istio's docs make one: root, an intermediate signing CA, the chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA")])  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.signing_key.public_key()),
            critical=False,
        )
        .sign(root.signing_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return {
        CA_CERT_FILE: pem,
        CA_KEY_FILE: key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
        ROOT_CERT_FILE: root.root_pem,
        CERT_CHAIN_FILE: pem + root.root_pem,
    }


def test_files_round_trip(ca: MeshCA) -> None:
    loaded = MeshCA.load(ca.files(), NOW)
    assert (loaded.root, loaded.signing_cert) == (ca.root, ca.signing_cert)
    without_chain = {**ca.files(), CERT_CHAIN_FILE: None}
    assert MeshCA.load(without_chain, NOW).chain == (ca.root,)


def test_a_supplied_intermediate_ca_signs_and_peers_verify_to_the_root(ca: MeshCA) -> None:
    plugged = MeshCA.load(intermediate_ca(ca), NOW)
    issued = plugged.sign(make_csr(new_private_key(), SLEEP), SLEEP, NOW)
    chain = parse_certificates(issued.cert_chain_pem)
    assert [c.subject.rfc4514_string() for c in chain] == ["", "CN=Intermediate CA,O=Istio"]
    assert verify_peer(issued.cert_chain_pem, [ca.root], NOW).identity == SLEEP


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: {**f, CA_KEY_FILE: None}, "ca-key.pem is missing or empty"),
        (
            lambda f: {**f, CA_CERT_FILE: b"not a certificate"},
            "ca-cert.pem holds no PEM certificate",
        ),
        (
            lambda f: {**f, CA_CERT_FILE: f[CA_CERT_FILE].replace(b"M", b"A", 5)},
            "ca-cert.pem is not valid PEM",
        ),
        (
            lambda f: {
                **f,
                CA_KEY_FILE: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            },
            "ca-key.pem is not a PEM private key",
        ),  # fmt: skip
        (
            lambda f: {**f, CA_KEY_FILE: MeshCA.create(NOW).files()[CA_KEY_FILE]},
            "ca-key.pem is not the key of ca-cert.pem",
        ),
        (
            lambda f: {**f, ROOT_CERT_FILE: MeshCA.create(NOW).root_pem},
            "is not signed by O=cluster.local (same name, another key) (the chain must lead to root-cert.pem)",
        ),
        (
            lambda f: {**f, CERT_CHAIN_FILE: MeshCA.create(NOW).root_pem},
            "cert-chain.pem must start with ca-cert.pem",
        ),
    ],
)
def test_a_corrupted_ca_file_is_refused_with_the_file_named(
    ca: MeshCA, damage, message: str
) -> None:
    with pytest.raises(CAError, match=".*") as refused:
        MeshCA.load(damage(intermediate_ca(ca)), NOW)
    assert message in str(refused.value)


def test_an_expired_supplied_ca_is_refused(ca: MeshCA) -> None:
    with pytest.raises(CAError, match=r"ca-cert.pem expired at"):
        MeshCA.load(intermediate_ca(ca), NOW + timedelta(days=400))


def test_a_ca_certificate_of_another_key_type_is_refused_not_a_crash(ca: MeshCA) -> None:
    """An Ed25519 ca-cert.pem beside the EC ca-key.pem: a clear refusal, not an exception
    from comparing keys of two types."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    other = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(other.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(other, None)
    )
    files = {**intermediate_ca(ca), CA_CERT_FILE: cert.public_bytes(serialization.Encoding.PEM)}
    with pytest.raises(CAError, match="ca-key.pem is not the key of ca-cert.pem"):
        MeshCA.load(files, NOW)
