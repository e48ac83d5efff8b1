"""PeerAuthentication: Istio's ``ValidatePeerAuthentication`` (istio/istio
``pkg/config/validation/validation.go``): ``portLevelMtls`` only with a workload selector, not
empty when written, ports 1..65535; the selector's labels.
"""

from __future__ import annotations

from mesh.config.issues import Issue
from mesh.config.model import PeerAuthentication
from mesh.config.resource import Resource
from mesh.config.validate.values import Findings, check_workload_selector


def check_peer_authentication(resource: Resource, out: list[Issue]) -> None:
    spec: PeerAuthentication = resource.spec
    found = Findings(resource, out)
    empty_selector = spec.selector is None or not spec.selector.match_labels
    if empty_selector and spec.port_level_mtls:
        found.error(
            "portLevelMtls",
            "mesh/namespace peer authentication cannot have port level mTLS (add a selector)",
        )
    if spec.port_level_mtls is not None and not spec.port_level_mtls:
        found.error("portLevelMtls", "port level mTLS, if defined, must have at least one element")
    for port in spec.port_level_mtls or {}:
        if not port.isdigit() or not 0 < int(port) <= 65535:
            found.error(f"portLevelMtls.{port}", f"port must be in range 1..65535 (it is {port!r})")
    check_workload_selector(found, "selector", spec.selector)
