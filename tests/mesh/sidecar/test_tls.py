"""The secrets directory loaded into TLS contexts (``mesh.sidecar.tls``)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mesh.security.ca import MeshCA
from mesh.security.identity import Identity, IdentityError
from mesh.sidecar.secure import sni
from mesh.sidecar.testing import write_secrets
from mesh.sidecar.tls import Secrets, SecretsError, check_peer, load_generation


@pytest.fixture(scope="module")
def ca() -> MeshCA:
    return MeshCA.create(datetime.now(UTC))


def test_sni_is_istios_outbound_cluster_name() -> None:
    assert sni(9080, None, "httpbin.foo.svc.cluster.local") == (
        "outbound_.9080_._.httpbin.foo.svc.cluster.local"
    )
    assert sni(9080, "v1", "reviews.default.svc.cluster.local").startswith("outbound_.9080_.v1_.")


def test_a_good_generation_loads(tmp_path: Path, ca: MeshCA) -> None:
    gen = write_secrets(tmp_path, ca, "foo", "httpbin")
    creds = load_generation(gen, time.time())
    assert creds.uri == "spiffe://cluster.local/ns/foo/sa/httpbin"
    assert creds.generation == "..gen-1" and creds.not_after > time.time()
    assert creds.server.minimum_version.name == "TLSv1_2"
    assert creds.server.verify_mode.name == "CERT_REQUIRED"  # client certificate required
    assert creds.describe()["identity"] == creds.uri
    assert oct(os.stat(gen / "key.pem").st_mode & 0o777) == "0o600"


def test_a_mismatched_key_is_refused(tmp_path: Path, ca: MeshCA) -> None:
    other = write_secrets(tmp_path / "other", ca, "foo", "httpbin")
    gen = write_secrets(tmp_path, ca, "foo", "httpbin", key_pem=(other / "key.pem").read_bytes())
    with pytest.raises(SecretsError, match="key.pem is not the key of cert-chain.pem"):
        load_generation(gen, time.time())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"chain_pem": b"garbage"}, "cert-chain.pem"),
        (
            {"root_pem": b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"},
            "root-cert",
        ),
        ({"key_pem": b""}, "key.pem is missing or empty"),
    ],
)
def test_unparsable_files_are_refused(
    tmp_path: Path, ca: MeshCA, override: dict[str, bytes], message: str
) -> None:
    gen = write_secrets(tmp_path, ca, "foo", "httpbin", **override)  # type: ignore[arg-type]
    with pytest.raises(SecretsError, match=message):
        load_generation(gen, time.time())


def test_meta_identity_must_be_the_certificates(tmp_path: Path, ca: MeshCA) -> None:
    gen = write_secrets(tmp_path, ca, "foo", "httpbin")
    (gen / "meta.json").write_text('{"identity": "spiffe://cluster.local/ns/foo/sa/admin"}')
    with pytest.raises(SecretsError, match="meta.json says"):
        load_generation(gen, time.time())


def test_an_expired_certificate_is_refused(tmp_path: Path, ca: MeshCA) -> None:
    gen = write_secrets(tmp_path, ca, "foo", "httpbin", ttl=60, now=time.time() - 600)
    with pytest.raises(SecretsError, match="expired"):
        load_generation(gen, time.time())


def test_check_peer() -> None:
    cert = {"subjectAltName": (("URI", "spiffe://cluster.local/ns/foo/sa/sleep"),)}
    assert check_peer(cert, "cluster.local").principal == "cluster.local/ns/foo/sa/sleep"
    assert check_peer(cert, "cluster.local", Identity("foo", "sleep")).service_account == "sleep"
    with pytest.raises(IdentityError, match="expected"):
        check_peer(cert, "cluster.local", Identity("foo", "httpbin"))
    with pytest.raises(IdentityError, match="trust domain"):
        check_peer(cert, "example.org")
    with pytest.raises(IdentityError, match="no single SPIFFE"):
        check_peer({"subjectAltName": (("DNS", "x"),)}, "cluster.local")
    with pytest.raises(IdentityError, match="no certificate"):
        check_peer(None, "cluster.local")


def test_secrets_keep_the_last_good_generation(tmp_path: Path, ca: MeshCA) -> None:
    loop = asyncio.new_event_loop()
    logged: list[str] = []
    changes: list[int] = []
    try:
        secrets = Secrets(loop, tmp_path, lambda: changes.append(1), logged.append)
        assert secrets.reload() is False and secrets.current is None  # no identity yet
        write_secrets(tmp_path, ca, "foo", "httpbin")
        assert secrets.reload() is True and secrets.current is not None
        assert secrets.reload() is False  # unchanged
        write_secrets(tmp_path, ca, "foo", "httpbin", generation=2, chain_pem=b"nope")
        assert secrets.reload() is False
        assert secrets.current.generation == "..gen-1"
        assert secrets.error is not None and "keeping ..gen-1" in secrets.error
        write_secrets(tmp_path, ca, "foo", "httpbin", generation=3)
        assert secrets.reload() is True and secrets.current.generation == "..gen-3"
        assert secrets.error is None and secrets.rotations == 1 and secrets.refused == 1
        assert changes == [1, 1] and len(logged) == 1
        assert secrets.status()["current"]["generation"] == "..gen-3"
    finally:
        loop.close()
