"""Gateway: servers and ports."""

from __future__ import annotations

import pytest

from tests.helpers import assert_finding, doc

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    (
        "gateway-no-port-name",
        doc(
            "Gateway",
            "gw",
            "selector: {istio: ingressgateway}\nservers:\n- port: {number: 8080, protocol: HTTP}\n  hosts: ['*']",
        ),
        "Error IST0106 servers[0].port.name",
        "must be set",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)
