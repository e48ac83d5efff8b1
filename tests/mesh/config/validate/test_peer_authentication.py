"""PeerAuthentication validation: Istio's own ``TestValidatePeerAuthentication`` table (istio/istio
``pkg/config/validation/validation_test.go`` at commit 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c),
each Go case rewritten as YAML, with Istio's verdicts (valid: no ``IST0106``; warning: an
``IST0133``).
"""

from __future__ import annotations

import pytest

from tests.helpers import istio_check, istio_verdict, security_doc

PA = "PeerAuthentication"
HTTPBIN = "selector:\n  matchLabels: {app: httpbin}\n"


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
    found = istio_check(security_doc(PA, name, spec, "some-namespace"))
    assert istio_verdict(found) == (valid, warning), [str(i) for i in found]
