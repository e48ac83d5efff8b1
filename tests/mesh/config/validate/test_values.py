"""Shared value checks (regexes, string matches, durations, percentages, header names), as
they show through the fields that use them."""

from __future__ import annotations

import pytest

from tests.helpers import ROUTE, assert_finding, vs

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    (
        "bad-regex",
        vs(
            "hosts: [reviews]\nhttp:\n- match:\n  - headers: {cookie: {regex: '^(*?;)?(product-page=v2)(;*)??'}}\n  "
            + ROUTE
        ),
        "Error IST0106 http[0].match[0].headers.cookie.regex",
        "no argument for repetition operator",
    ),
    (
        "regex-star-presence",
        vs("hosts: [reviews]\nhttp:\n- match:\n  - headers: {end-user: {regex: '*'}}\n  " + ROUTE),
        "Error IST0106 http[0].match[0].headers.end-user.regex",
        "use {} instead",
    ),
    (
        "empty-header-prefix",
        vs("hosts: [reviews]\nhttp:\n- match:\n  - headers: {end-user: {prefix: ''}}\n  " + ROUTE),
        "Error IST0106 http[0].match[0].headers.end-user.prefix",
        "should not be empty",
    ),
    (
        "sub-ms-duration",
        vs("hosts: [reviews]\nhttp:\n- timeout: 0.5ms\n  " + ROUTE),
        "Error IST0106 http[0].timeout",
        "at least 1ms",
    ),
    (
        "percentage-over-100",
        vs(
            "hosts: [reviews]\nhttp:\n- fault: {abort: {httpStatus: 503, percentage: {value: 150}}}\n  "
            + ROUTE
        ),
        "Error IST0106 http[0].fault.abort.percentage",
        "neither 0.0, nor in range",
    ),
    (
        # Istio accepts the pseudo-headers :method, :scheme, :authority, :path, :status as keys.
        "pseudo-header",
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - headers: {{':method': {{exact: GET}}}}\n  {ROUTE}"
        ),
        None,
        None,
    ),
    (
        "bad-header-name",
        vs(f"hosts: [reviews]\nhttp:\n- match:\n  - headers: {{'a b': {{exact: x}}}}\n  {ROUTE}"),
        "Error IST0106 http[0].match[0].headers.a b",
        "not a valid header name",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)
