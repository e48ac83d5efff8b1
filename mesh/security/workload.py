"""What security reads of a pod (``mesh.topology.Pod``): its selector match and its proxy.

Primitives: ``selects(selector, labels)`` — Kubernetes' ``matchLabels``: every label of the
selector present with the same value (no selector selects everything); ``has_labels`` (Istio
treats a selector without labels as none: namespace- or mesh-wide); ``has_proxy(pod)`` —
a pod with a sidecar (or a gateway proxy) speaks mTLS and enforces policy, one without
(``sidecar.istio.io/inject: "false"``) speaks and accepts plaintext only.

The topology (which pods exist) is passed in by the caller; nothing here reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

from mesh.config.model import WorkloadSelector
from mesh.topology import Pod


def selects(selector: WorkloadSelector | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    return all(labels.get(key) == value for key, value in selector.match_labels.items())


def has_labels(selector: WorkloadSelector | None) -> bool:
    return selector is not None and bool(selector.match_labels)


def has_proxy(pod: Pod) -> bool:
    return pod.proxy != "none"
