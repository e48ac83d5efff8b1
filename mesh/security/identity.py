"""SPIFFE identities and principals, as Istio writes them.

Primitives: ``TRUST_DOMAIN`` (``cluster.local``), ``Identity`` (trust domain, namespace,
service account) with its SPIFFE ``uri`` (``spiffe://cluster.local/ns/foo/sa/sleep``, the
certificate's URI SAN) and its ``principal`` (``cluster.local/ns/foo/sa/sleep``, what
AuthorizationPolicy ``principals`` and ``source.principal`` name), ``pod_identity`` and
``IdentityError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mesh.topology import CLUSTER_DOMAIN, Pod

# Istio's trust domain defaults to the cluster's DNS domain.
TRUST_DOMAIN = CLUSTER_DOMAIN
SPIFFE_SCHEME = "spiffe://"

# Kubernetes names: a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_TRUST_DOMAIN = r"[a-z0-9]([-a-z0-9._]*[a-z0-9])?"
_IDENTITY_PATH = re.compile(
    rf"^(?P<td>{_TRUST_DOMAIN})/ns/(?P<ns>{_LABEL})/sa/(?P<sa>{_SUBDOMAIN})$"
)


class IdentityError(ValueError):
    """Text that is not a workload identity (``spiffe://<td>/ns/<ns>/sa/<sa>``)."""


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """A workload's identity: who a certificate says its holder is."""

    namespace: str
    service_account: str
    trust_domain: str = TRUST_DOMAIN

    def __post_init__(self) -> None:
        if _IDENTITY_PATH.match(self.principal) is None:
            raise IdentityError(
                f"{self.principal!r} is not a workload principal: namespace and service account "
                "must be Kubernetes names (lowercase letters, digits, '-', '.')"
            )

    @property
    def principal(self) -> str:
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def uri(self) -> str:
        return SPIFFE_SCHEME + self.principal

    def __str__(self) -> str:
        return self.uri


def parse_principal(text: str) -> Identity:
    """``cluster.local/ns/foo/sa/sleep`` → ``Identity``; raises ``IdentityError``."""
    found = _IDENTITY_PATH.match(text)
    if found is None:
        raise IdentityError(
            f"{text!r} is not a workload principal (expected <trust-domain>/ns/<namespace>/sa/"
            "<service-account>, e.g. cluster.local/ns/default/sa/bookinfo-productpage)"
        )
    return Identity(found.group("ns"), found.group("sa"), found.group("td"))


def parse_uri(text: str) -> Identity:
    """``spiffe://cluster.local/ns/foo/sa/sleep`` → ``Identity``; raises ``IdentityError``."""
    if not text.startswith(SPIFFE_SCHEME):
        raise IdentityError(f"{text!r} is not a SPIFFE ID (it must start with spiffe://)")
    return parse_principal(text[len(SPIFFE_SCHEME) :])


def pod_identity(pod: Pod, trust_domain: str = TRUST_DOMAIN) -> Identity:
    """The identity a pod's certificate carries: its namespace and service account."""
    return Identity(pod.namespace, pod.service_account, trust_domain)
