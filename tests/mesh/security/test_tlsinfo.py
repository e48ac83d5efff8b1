"""The mesh CA's certificates in a real mutual-TLS handshake through Python's ``ssl`` (OpenSSL),
in memory (two ``MemoryBIO`` pairs, no socket): what the sidecar will do. OpenSSL checks the
dates against the real clock, so the certificates here are issued relative to it."""

from __future__ import annotations

import hashlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh.security.ca import MeshCA
from mesh.security.certs import make_csr, new_private_key, private_key_pem
from mesh.security.identity import Identity, IdentityError
from mesh.security.tlsinfo import client_cert_details, peer_identity, subject_rfc2253
from mesh.security.xfcc import forward_client_cert
from tests.helpers import HTTPBIN_ID, SLEEP_ID

SLEEP, HTTPBIN = SLEEP_ID, HTTPBIN_ID


def context(
    tmp: Path,
    ca: MeshCA,
    identity: Identity | None,
    server: bool,
    issued_at: datetime,
    ttl: timedelta,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # peers are checked by SPIFFE identity, not host name
    ctx.verify_mode = ssl.CERT_REQUIRED  # STRICT: a client certificate is required
    ctx.load_verify_locations(cadata=ca.root_pem.decode())
    if identity is not None:
        key = new_private_key()
        issued = ca.sign(make_csr(key, identity), identity, issued_at, ttl)
        chain, key_file = (
            tmp / f"{identity.service_account}.pem",
            tmp / f"{identity.service_account}.key",
        )
        chain.write_bytes(issued.cert_chain_pem)
        key_file.write_bytes(private_key_pem(key))
        ctx.load_cert_chain(chain, key_file)
    return ctx


def handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> ssl.SSLObject:
    """Run both ends until done; return the server's end. Raises ``ssl.SSLError``."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server learns of a rejected client certificate on first read.
            client.write(b"GET / HTTP/1.1\r\n\r\n")
            s_in.write(c_out.read())
            assert server.read(1024).startswith(b"GET")
            return server
    raise AssertionError("handshake did not finish")


NOW = datetime.now(UTC)
DAY = timedelta(hours=24)


@pytest.fixture(scope="module")
def ca() -> MeshCA:  # overrides the shared one: OpenSSL checks dates against the real clock
    return MeshCA.create(NOW)


def test_mutual_tls_between_two_workloads_gives_the_principal_and_xfcc(
    tmp_path: Path, ca: MeshCA
) -> None:
    server = handshake(
        context(tmp_path, ca, SLEEP, False, NOW, DAY),
        context(tmp_path, ca, HTTPBIN, True, NOW, DAY),
    )
    peer = server.getpeercert()
    der = server.getpeercert(binary_form=True)
    assert peer_identity(peer) == SLEEP
    details = client_cert_details([HTTPBIN.uri], peer, der)
    assert forward_client_cert("APPEND_FORWARD", None, details) == (
        "By=spiffe://cluster.local/ns/foo/sa/httpbin;"
        f'Hash={hashlib.sha256(der).hexdigest()};Subject="";'
        "URI=spiffe://cluster.local/ns/foo/sa/sleep"
    )


@pytest.mark.parametrize(
    ("client", "server", "what"),
    [
        ("expired", "ok", "certificate has expired"),
        ("wrong-ca", "ok", "certificate verify failed"),  # signed by another CA
        ("none", "ok", "peer did not return a certificate"),  # STRICT without client cert
        ("ok", "not-yet-valid", "certificate is not yet valid"),
    ],
)
def test_bad_certificates_fail_the_handshake(
    tmp_path: Path, ca: MeshCA, client: str, server: str, what: str
) -> None:
    def ctx(kind: str, identity: Identity, is_server: bool) -> ssl.SSLContext:
        if kind == "expired":
            return context(tmp_path, ca, identity, is_server, NOW - 2 * DAY, DAY)
        if kind == "not-yet-valid":
            return context(tmp_path, ca, identity, is_server, NOW + DAY, DAY)
        if kind == "wrong-ca":
            other = MeshCA.create(NOW)
            wrong = context(tmp_path, other, identity, is_server, NOW, DAY)
            wrong.load_verify_locations(cadata=ca.root_pem.decode())
            return wrong
        return context(tmp_path, ca, None if kind == "none" else identity, is_server, NOW, DAY)

    with pytest.raises(ssl.SSLError, match=what):
        handshake(ctx(client, SLEEP, False), ctx(server, HTTPBIN, True))


def test_peer_without_spiffe_identity_and_subjects_as_envoy_writes_them() -> None:
    with pytest.raises(IdentityError, match="URI SANs: https://example.com"):
        peer_identity({"subjectAltName": (("URI", "https://example.com"),)})
    cert = {
        "subject": (
            (("countryName", "US"),),
            (("organizationName", "Acme, Inc."),),
            (("commonName", "svc"),),
        )
    }
    assert subject_rfc2253(cert) == "CN=svc,O=Acme\\, Inc.,C=US"
    assert subject_rfc2253({"subject": ()}) == ""
