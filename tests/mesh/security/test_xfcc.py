"""X-Forwarded-Client-Cert as Envoy writes it with Istio's settings."""

from __future__ import annotations

import pytest

from mesh.security.xfcc import (
    GATEWAY_MODE,
    SIDECAR_INBOUND_MODE,
    ClientCertDetails,
    forward_client_cert,
)

DETAILS = ClientCertDetails(
    by=("spiffe://cluster.local/ns/foo/sa/httpbin",),
    hash="4b6c",
    subject="",
    uris=("spiffe://cluster.local/ns/foo/sa/sleep",),
)
ELEMENT = (
    'By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=4b6c;Subject="";'
    "URI=spiffe://cluster.local/ns/foo/sa/sleep"
)


def test_the_element_istio_docs_show() -> None:
    assert DETAILS.element() == ELEMENT


def test_sidecar_inbound_appends_to_what_came_in() -> None:
    assert SIDECAR_INBOUND_MODE == "APPEND_FORWARD"
    assert forward_client_cert(SIDECAR_INBOUND_MODE, None, DETAILS) == ELEMENT
    assert (
        forward_client_cert(SIDECAR_INBOUND_MODE, "By=a;URI=b", DETAILS) == "By=a;URI=b," + ELEMENT
    )


@pytest.mark.parametrize("mode", ["APPEND_FORWARD", "SANITIZE_SET", "FORWARD_ONLY", "SANITIZE"])
def test_a_plaintext_connection_never_forwards_a_client_supplied_header(mode) -> None:
    assert forward_client_cert(mode, "By=forged;URI=spiffe://evil", None) is None


def test_other_modes() -> None:
    assert GATEWAY_MODE == "SANITIZE_SET"
    assert forward_client_cert("SANITIZE_SET", "By=a", DETAILS) == ELEMENT
    assert forward_client_cert("FORWARD_ONLY", "By=a", DETAILS) == "By=a"
    assert forward_client_cert("SANITIZE", "By=a", DETAILS) is None
    assert forward_client_cert("ALWAYS_FORWARD_ONLY", "By=a", None) == "By=a"


def test_dns_sans_follow_the_uri_and_an_empty_uri_is_still_written() -> None:
    details = ClientCertDetails(by=(), hash="ab", subject="CN=x", dns=("a.example", "b.example"))
    assert details.element() == 'Hash=ab;Subject="CN=x";URI=;DNS=a.example;DNS=b.example'
