"""The facts about a workload that security decisions read, and Istio's workload selector.

Primitives: ``Workload`` (name, namespace, labels, service account, whether a sidecar runs
beside it) and ``selects(selector, labels)`` — Kubernetes' ``matchLabels``: every label of the
selector present with the same value (an empty or missing selector selects everything).

The topology (which pods exist) is passed in by the caller; nothing here reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mesh.config.model import WorkloadSelector
from mesh.security.identity import TRUST_DOMAIN, Identity

DEFAULT_SERVICE_ACCOUNT = "default"


@dataclass(frozen=True, slots=True)
class Workload:
    """One pod as security sees it. ``service_account`` None: not known (the checks that need
    it are skipped); ``sidecar`` False: out of the mesh (``sidecar.istio.io/inject: "false"``),
    it speaks and accepts plaintext only and enforces no policy."""

    name: str
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = DEFAULT_SERVICE_ACCOUNT
    sidecar: bool = True

    def identity(self, trust_domain: str = TRUST_DOMAIN) -> Identity:
        """The identity its certificate carries (the pod's service account, ``default`` when
        the topology does not say)."""
        return Identity(
            self.namespace, self.service_account or DEFAULT_SERVICE_ACCOUNT, trust_domain
        )


def selects(selector: WorkloadSelector | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    return all(labels.get(key) == value for key, value in selector.match_labels.items())


def has_labels(selector: WorkloadSelector | None) -> bool:
    """Istio treats a selector without labels as no selector (namespace- or mesh-wide)."""
    return selector is not None and bool(selector.match_labels)
