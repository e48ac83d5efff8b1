"""VirtualService rule order: unreachable rules (IST0130), overlapping matches (IST0131)."""

from __future__ import annotations

import pytest

from tests.helpers import ROUTE, assert_finding, vs

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    (
        "rule-after-catch-all",
        vs(
            f"hosts: [reviews]\nhttp:\n- {ROUTE}\n- match:\n  - headers: {{end-user: {{exact: tester}}}}\n  {ROUTE}"
        ),
        "Warning IST0130 http[1]",
        "route without matches defined before",
    ),
    (
        "duplicate-match",
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - uri: {{prefix: /a}}\n  {ROUTE}\n- match:\n  - uri: {{prefix: /a}}\n  {ROUTE}"
        ),
        "Warning IST0131 http[1].match[0]",
        "duplicate/overlapping match in rule #0",
    ),
    (
        "covering-prefix",
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - uri: {{prefix: /a}}\n  {ROUTE}\n- match:\n  - uri: {{prefix: /ab}}\n  {ROUTE}"
        ),
        "Warning IST0131 http[1].match[0]",
        "prefix /ab is not used",
    ),
    (
        # A regex is never compared: Istio's check flattens exact and prefix matches only.
        "regex-after-prefix",
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - uri: {{prefix: /a}}\n  {ROUTE}\n- match:\n  - uri: {{regex: /ab.*}}\n  {ROUTE}"
        ),
        None,
        None,
    ),
    (
        # The earlier rule also needs a header: it does not cover the later one.
        "narrower-earlier-rule",
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - uri: {{prefix: /a}}\n    headers: {{end-user: {{exact: x}}}}\n  {ROUTE}\n- match:\n  - uri: {{prefix: /ab}}\n  {ROUTE}"
        ),
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)
