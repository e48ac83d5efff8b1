"""What the security core reads of a loaded policy resource, and where mesh-wide policy lives.

Primitives: ``PolicyResource`` (kind, name, namespace, spec, raw document — the shape of
``mesh.config.loader.Resource``), ``ROOT_NAMESPACE`` (``istio-system``: a policy there applies
to the whole mesh), ``annotations(resource)`` and ``policy_key(resource)``.
"""

# No ``from __future__ import annotations`` here: it would bind the name this module's
# ``annotations`` function needs (every annotation below is valid at run time anyway).
from collections.abc import Mapping
from typing import Any, Protocol

from mesh.topology import ROOT_NAMESPACE

__all__ = ["ROOT_NAMESPACE", "PolicyResource", "annotations", "policy_key"]


class PolicyResource(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def spec(self) -> Any: ...
    @property
    def raw(self) -> Mapping[str, Any]: ...


def annotations(resource: PolicyResource) -> Mapping[str, Any]:
    metadata = resource.raw.get("metadata")
    found = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def policy_key(resource: PolicyResource) -> str:
    """``<namespace>/<name>``, how ``describe`` and the analyzer name a policy."""
    return f"{resource.namespace}/{resource.name}"
