"""The security verifies' judging: istio.io's matrix lines and the authz-http pages."""

from __future__ import annotations

from mesh.lab.security_verify import (
    DENIED,
    DETAILS_ERROR,
    RATINGS_ERROR,
    REVIEWS_ERROR,
    curl_command,
    matrix_lines,
    measured_code,
    page_checks,
)

CELL = {"from": "sleep.legacy", "host": "httpbin.foo", "port": 8000, "expect": "000",
        "reason": "reset"}  # fmt: skip


def test_curl_is_istio_io_s() -> None:
    assert curl_command(CELL) == (
        "curl 'http://httpbin.foo:8000/ip' -s -o /dev/null -w '%{http_code}' --max-time 10"
    )
    assert measured_code("200") == "200"
    assert measured_code("") == "000"
    assert measured_code("command terminated\n000") == "000"


def test_matrix_lines_pass_and_fail() -> None:
    lines, failures = matrix_lines("mtls-strict", [CELL], {("sleep.legacy", "httpbin.foo"): "000"})
    assert failures == 0
    assert lines[1] == "  sleep.legacy to httpbin.foo: 000   PASS"
    lines, failures = matrix_lines("mtls-strict", [CELL], {("sleep.legacy", "httpbin.foo"): "200"})
    assert failures == 1 and "FAIL (expected 000: reset)" in lines[1]


def _ok(checks: list[tuple[str, bool]]) -> bool:
    return all(passed for _, passed in checks)


def test_the_authz_http_pages() -> None:
    assert _ok(page_checks("authz-deny-all", [(403, DENIED + "\n")] * 3))
    assert not _ok(page_checks("authz-deny-all", [(200, "page")]))
    both = f"{DETAILS_ERROR} ... {REVIEWS_ERROR}"
    assert _ok(page_checks("authz-productpage", [(200, both)] * 3))
    assert not _ok(page_checks("authz-productpage", [(200, DETAILS_ERROR)]))
    v1, v2 = "Book Details ... Book Reviews", f"Book Reviews {RATINGS_ERROR}"
    assert _ok(page_checks("authz-details-reviews", [(200, v1), (200, v2)]))
    assert not _ok(page_checks("authz-details-reviews", [(200, v1)]))  # ratings never denied
    stars = 'Book Reviews <div class="stars" data-stars="4">'
    assert _ok(page_checks("authz-ratings", [(200, v1), (200, stars)]))
    assert not _ok(page_checks("authz-ratings", [(200, v2), (200, stars)]))
