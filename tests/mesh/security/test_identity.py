"""SPIFFE identities and principals."""

from __future__ import annotations

import pytest

from mesh.security.identity import Identity, IdentityError, parse_principal, parse_uri, pod_identity
from mesh.topology import Pod


def test_uri_and_principal() -> None:
    identity = Identity("foo", "sleep")
    assert identity.uri == "spiffe://cluster.local/ns/foo/sa/sleep"
    assert identity.principal == "cluster.local/ns/foo/sa/sleep"
    assert parse_uri(identity.uri) == parse_principal(identity.principal) == identity


def test_a_pod_is_its_namespace_and_service_account() -> None:
    pod = Pod("productpage-v1", namespace="default", service_account="bookinfo-productpage")
    assert pod_identity(pod).principal == "cluster.local/ns/default/sa/bookinfo-productpage"


@pytest.mark.parametrize(
    "text", ["cluster.local/ns/foo", "cluster.local/ns/Foo/sa/x", "ns/foo/sa/x", ""]
)
def test_not_a_principal(text: str) -> None:
    with pytest.raises(IdentityError, match="is not a workload principal"):
        parse_principal(text)


def test_not_a_spiffe_id() -> None:
    with pytest.raises(IdentityError, match="must start with spiffe://"):
        parse_uri("https://cluster.local/ns/foo/sa/x")
    with pytest.raises(IdentityError):
        Identity("Foo", "x")
