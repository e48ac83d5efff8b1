"""PeerAuthentication validation: Istio's own ``TestValidatePeerAuthentication`` table (istio/istio
``pkg/config/validation/validation_test.go`` at commit 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c),
each Go case rewritten as YAML, with Istio's verdicts (valid: no ``IST0106``; warning: an
``IST0133``).
"""

from __future__ import annotations

import pytest

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.loader import load_text
from mesh.config.validate import analyze
from mesh.topology import Topology
from tests.helpers import security_doc

AP = "AuthorizationPolicy"
PA = "PeerAuthentication"
HTTPBIN_V1 = "selector:\n  matchLabels: {app: httpbin, version: v1}\n"
HTTPBIN = "selector:\n  matchLabels: {app: httpbin}\n"
GATEWAY_REF = "{group: gateway.networking.k8s.io, kind: Gateway, name: foo}"
DENY_PRINCIPAL_PORT = """
action: DENY
rules:
- from:
  - source: {principals: [temp]}
  to:
  - operation: {ports: ["8080"], methods: [GET, DELETE]}
"""


def check(text: str) -> list[Issue]:
    loaded = load_text(text, "test.yaml")
    assert loaded.resources, [str(i) for i in loaded.issues]
    return loaded.issues + analyze(loaded.resources, Topology())


def istio_verdict(found: list[Issue]) -> tuple[bool, bool]:
    """(valid, warned) as Istio's validation would say."""
    errors = [i for i in found if i.severity == "Error" and i.code == codes.SCHEMA_VALIDATION_ERROR]
    warnings = [i for i in found if i.severity == "Warning" and i.code == codes.SCHEMA_WARNING]
    return not errors, bool(warnings)


# (name, metadata.name, spec, valid, warning) — Istio's TestValidatePeerAuthentication.
PEER_AUTHENTICATION_CASES = [
    ("empty spec", "default", "{}", True, False),
    ("empty mtls with selector of empty labels", "default", "selector: {}\n", True, True),
    ("empty spec with non default name", "some-name", "{}", True, False),
    ("default name with non empty selector", "default", HTTPBIN, True, False),
    ("empty port level mtls", "foo", HTTPBIN + "portLevelMtls: {}\n", False, False),
    (
        "empty selector with port level mtls",
        "default",
        "portLevelMtls:\n  8080: {mode: UNSET}\n",
        False,
        False,
    ),
    ("port 0", "foo", "portLevelMtls:\n  0: {mode: UNSET}\n", False, False),
    ("unset mode", "default", "mtls: {mode: UNSET}\n", True, False),
    ("port level", "port-level", HTTPBIN + "portLevelMtls:\n  8080: {mode: UNSET}\n", True, False),
]


@pytest.mark.parametrize(
    ("name", "spec", "valid", "warning"),
    [case[1:] for case in PEER_AUTHENTICATION_CASES],
    ids=[case[0] for case in PEER_AUTHENTICATION_CASES],
)
def test_istio_peer_authentication_table(name: str, spec: str, valid: bool, warning: bool) -> None:
    found = check(security_doc(PA, name, spec, "some-namespace"))
    assert istio_verdict(found) == (valid, warning), [str(i) for i in found]
