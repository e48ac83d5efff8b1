"""The security module's verifies (``make verify-mtls``, ``make verify-authz``): what to
apply, what to expect, how to judge. Standard library only (the dispatcher runs it on the
compose lab's host, which has no venv).

- ``verify-mtls`` (profile ``security``): istio.io's reachability matrix — ``sleep`` in foo,
  bar and legacy curls ``httpbin`` in foo, bar and legacy (``CURL``, through ``make exec``'s
  path: the pod's own sidecar, or none) — at every stage of ``MTLS_STAGES``. The expectation
  is computed by ``meshctl reachability -o json`` from the applied config
  (``mesh.security.mtls``); ``matrix_lines`` compares and prints it as istio.io does
  (``sleep.legacy to httpbin.foo: 000``).
- ``verify-authz`` (profile ``istio``): istio.io's "Authorization for HTTP traffic" cascade,
  the documented page at every step of ``AUTHZ_STAGES`` (``page_checks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MTLS_STAGES = (
    "mtls-permissive",
    "mtls-strict-namespace",
    "mtls-strict",
    "mtls-workload",
    "mtls-port-level",
    "mtls-precedence",
)
AUTHZ_STAGES = ("authz-deny-all", "authz-productpage", "authz-details-reviews", "authz-ratings")
# istio.io's: curl "http://httpbin.${to}:8000/ip" -s -o /dev/null -w "%{http_code}".
CURL = "curl 'http://{host}:{port}/ip' -s -o /dev/null -w '%{{http_code}}' --max-time 10"
PAGES = 12  # reviews v1, v2, v3 in turn: each version several times

DETAILS_ERROR = "Error fetching product details"
REVIEWS_ERROR = "Error fetching product reviews"
RATINGS_ERROR = "Ratings service is currently unavailable"
STARS = "data-stars="
DENIED = "RBAC: access denied"


def curl_command(cell: Mapping[str, Any]) -> str:
    return CURL.format(host=cell["host"], port=cell["port"])


def measured_code(stdout: str) -> str:
    """curl's ``%{http_code}`` (``000`` when the connection failed: nothing printed else)."""
    text = stdout.strip()[-3:]
    return text if len(text) == 3 and text.isdigit() else "000"


def matrix_lines(
    stage: str, expected: Sequence[Mapping[str, Any]], measured: Mapping[tuple[str, str], str]
) -> tuple[list[str], int]:
    """istio.io's matrix lines for one stage, each with PASS/FAIL; and the failure count."""
    lines = [f"{stage} (scenarios/{stage}.yaml):"]
    failures = 0
    for cell in expected:
        got = measured.get((cell["from"], cell["host"]), "?")
        ok = got == cell["expect"]
        failures += not ok
        verdict = "PASS" if ok else f"FAIL (expected {cell['expect']}: {cell['reason']})"
        lines.append(f"  {cell['from']} to {cell['host']}: {got}   {verdict}")
    return lines, failures


def page_checks(stage: str, pages: Sequence[tuple[int, str]]) -> list[tuple[str, bool]]:
    """(check, passed) for the pages one step of the authz-http task must give."""
    statuses = {status for status, _ in pages}
    if stage == "authz-deny-all":
        return [
            ("every /productpage is 403", statuses == {403}),
            (f"body {DENIED!r}", all(body.strip() == DENIED for _, body in pages)),
        ]
    ok = [("every /productpage is 200", statuses == {200})]
    details = [DETAILS_ERROR in body for _, body in pages]
    reviews = [REVIEWS_ERROR in body for _, body in pages]
    ratings = [RATINGS_ERROR in body for _, body in pages]
    stars = [STARS in body for _, body in pages]
    if stage == "authz-productpage":
        return ok + [
            (f"every page says {DETAILS_ERROR!r}", all(details)),
            (f"every page says {REVIEWS_ERROR!r}", all(reviews)),
        ]
    if stage == "authz-details-reviews":
        return ok + [
            ("details and reviews shown on every page", not any(details) and not any(reviews)),
            (f"reviews v2/v3 say {RATINGS_ERROR!r}", any(ratings)),
            ("no stars anywhere", not any(stars)),
        ]
    if stage == "authz-ratings":
        return ok + [
            ("details and reviews shown on every page", not any(details) and not any(reviews)),
            ("stars from reviews v2/v3", any(stars)),
            ("no ratings error", not any(ratings)),
        ]
    raise ValueError(f"no authz stage {stage!r}")
