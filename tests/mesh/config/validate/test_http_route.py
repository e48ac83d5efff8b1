"""VirtualService HTTP routes: weights, fault, redirect, retries, matches (IST0106, MSH0008)."""

from __future__ import annotations

import pytest

from tests.helpers import ROUTE, assert_finding, findings, vs

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    (
        "weights-negative",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: -10\n  - destination: {host: reviews, subset: v2}\n    weight: 110"
        ),
        "Error IST0106 http[0].route[0].weight",
        "weight -10 < 0",
    ),
    (
        "weights-all-zero",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 0\n  - destination: {host: reviews, subset: v2}\n    weight: 0"
        ),
        "Error IST0106 http[0].route",
        "total destination weight = 0",
    ),
    (
        "weights-not-100",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 70\n  - destination: {host: reviews, subset: v2}\n    weight: 20"
        ),
        "Info MSH0008 http[0].route",
        "sum to 90",
    ),
    (
        "abort-status-out-of-range",
        vs(
            "hosts: [reviews]\nhttp:\n- fault: {abort: {httpStatus: 700, percentage: {value: 50}}}\n  "
            + ROUTE
        ),
        "Error IST0106 http[0].fault.abort.httpStatus",
        "not in range 200-599",
    ),
    (
        "fault-without-percentage",
        vs("hosts: [reviews]\nhttp:\n- fault: {delay: {fixedDelay: 2s}}\n  " + ROUTE),
        "Info MSH0008 http[0].fault.delay",
        "never injected",
    ),
    (
        "fault-empty",
        vs("hosts: [reviews]\nhttp:\n- fault: {}\n  " + ROUTE),
        "Error IST0106 http[0].fault",
        "an abort and/or a delay",
    ),
    (
        "redirect-not-3xx",
        vs("hosts: [reviews]\nhttp:\n- redirect: {uri: /new, redirectCode: 200}"),
        "Error IST0106 http[0].redirect.redirectCode",
        "must be 3xx",
    ),
    (
        "route-and-redirect",
        vs(f"hosts: [reviews]\nhttp:\n- redirect: {{uri: /x}}\n  {ROUTE}"),
        "Error IST0106 http[0]",
        "both route and redirect",
    ),
    (
        "retry-on-unknown",
        vs(
            f"hosts: [reviews]\nhttp:\n- retries: {{attempts: 3, retryOn: '5xx,sometimes'}}\n  {ROUTE}"
        ),
        "Error IST0106 http[0].retries.retryOn",
        "sometimes",
    ),
    (
        "empty-match-entry",
        vs(f"hosts: [reviews]\nhttp:\n- match:\n  - {{}}\n  {ROUTE}"),
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)


def test_empty_uri_prefix_is_valid() -> None:
    found = findings(vs(f"hosts: [reviews]\nhttp:\n- match:\n  - uri: {{prefix: ''}}\n  {ROUTE}"))
    assert not [f for f in found if f.startswith("Error")]


def test_without_headers_regex_star_means_absent_and_is_valid() -> None:
    found = findings(
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - withoutHeaders: {{end-user: {{regex: '*'}}}}\n  {ROUTE}"
        )
    )
    assert not [f for f in found if f.startswith("Error")]
