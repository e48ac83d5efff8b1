"""The security kinds as the loader builds them: Istio's empty-versus-unset distinctions."""

from __future__ import annotations

from mesh.config.loader import load_text
from mesh.config.security_policy import AuthorizationPolicy, PeerAuthentication

POLICY = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: p, namespace: foo}}
spec:
{spec}
"""


def spec_of(text: str) -> object:
    result = load_text(text)
    assert result.ok, result.issues
    return result.resources[0].spec


def test_an_empty_spec_has_no_rules_and_allows_by_default() -> None:
    # ``spec: {}`` denies everything in Istio: an ALLOW policy with no rule matches nothing.
    spec = spec_of(POLICY.format(spec="  {}"))
    assert isinstance(spec, AuthorizationPolicy)
    assert spec.rules is None and spec.action is None


def test_an_empty_rule_and_an_empty_from_stay_distinct_from_unset() -> None:
    spec = spec_of(POLICY.format(spec="  rules:\n  - {}\n  - from: []"))
    assert isinstance(spec, AuthorizationPolicy)
    assert spec.rules is not None
    first, second = spec.rules
    assert first is not None and first.from_ is None
    assert second is not None and second.from_ == ()


def test_peer_authentication_port_level_modes() -> None:
    spec = spec_of(
        "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n"
        "metadata: {name: p, namespace: foo}\nspec:\n  selector: {matchLabels: {app: httpbin}}\n"
        "  mtls: {mode: STRICT}\n  portLevelMtls:\n    '8080': {mode: DISABLE}\n"
    )
    assert isinstance(spec, PeerAuthentication)
    assert spec.mtls is not None and spec.mtls.mode == "STRICT"
    assert spec.selector is not None and spec.selector.match_labels == {"app": "httpbin"}
    assert {port: m.mode for port, m in spec.port_level_mtls.items()} == {"8080": "DISABLE"}
