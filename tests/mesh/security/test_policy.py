"""What the security core reads of a loaded resource."""

from __future__ import annotations

from mesh.config.loader import load_text
from mesh.security.policy import annotations, policy_key
from tests.helpers import security_doc


def test_annotations_and_key() -> None:
    text = security_doc("AuthorizationPolicy", "p", "{}", "foo", {"istio.io/dry-run": "true"})
    (resource,) = load_text(text, "p.yaml").resources
    assert annotations(resource) == {"istio.io/dry-run": "true"}
    assert policy_key(resource) == "foo/p"
    (plain,) = load_text(security_doc("AuthorizationPolicy", "q", "{}"), "q.yaml").resources
    assert annotations(plain) == {}
