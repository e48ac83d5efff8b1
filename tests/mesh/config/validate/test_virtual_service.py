"""VirtualService as a whole: hosts, gateways, TCP and TLS routes (IST0106)."""

from __future__ import annotations

import pytest

from tests.helpers import ROUTE, assert_finding, vs

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    ("clean", vs(f"hosts: [reviews]\nhttp:\n- {ROUTE}"), None, None),
    (
        "star-host-on-mesh",
        vs(f"hosts: ['*']\nhttp:\n- {ROUTE}"),
        "Error IST0106 hosts[0]",
        "not allowed",
    ),
    (
        "sni-host-outside-the-hosts",
        vs(
            "hosts: [reviews.default.svc.cluster.local]\ntls:\n- match:\n  - sniHosts: [ratings.default.svc.cluster.local]\n  route:\n  - destination: {host: reviews}"
        ),
        "Error IST0106 tls[0].match[0].sniHosts[0]",
        "not a compatible subset",
    ),
    (
        "tcp-bad-subnet",
        vs(
            "hosts: [reviews]\ntcp:\n- match:\n  - destinationSubnets: [10.0.0.0/33]\n  route:\n  - destination: {host: reviews}"
        ),
        "Error IST0106 tcp[0].match[0].destinationSubnets[0]",
        "not a valid IP or CIDR block",
    ),
    (
        "legacy-gateway-name",
        vs(f"hosts: [reviews]\ngateways: [bookinfo-gateway.default]\nhttp:\n- {ROUTE}"),
        "Warning IST0133 gateways[0]",
        "prefer the <namespace>/<name> format: 'default/bookinfo-gateway'",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)
