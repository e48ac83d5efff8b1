"""What each strategy of DESIGN.md's table promises, as data: pure, no I/O.

``verify.py`` turns these numbers into checks; ``tests/loadtests/test_strategies.py`` keeps
them equal to ``scenarios/<name>.yaml`` (a scenario edit that changes a promise must change
this table too, or the test says so).

Primitives: ``STRATEGIES`` (every verifiable name, in the table's order), ``CANARY_WEIGHTS``
(productpage version -> weight at the gateway), ``BLUE_GREEN`` (Host -> productpage version),
``DELAY_SECONDS``, ``ABORT_FRACTION``, ``REVIEWS_ATTEMPTS``.
"""

from __future__ import annotations

LIVE_HOST = "bookinfo.local"
TEST_HOST = "test.bookinfo.local"
TESTER = "tester"

STRATEGIES: tuple[str, ...] = (
    "reset",
    "dark-launch",
    "delay",
    "abort",
    "blue-green",
    "blue-green-switch",
    "blue-green-back",
    "canary-70-30",
    "canary-5-95",
    "canary-sticky",
    "circuit-breaker",
    "readiness",
)

# Gateway weights of productpage subsets (canary-sticky: the weights of its no-cookie route).
CANARY_WEIGHTS: dict[str, dict[str, int]] = {
    "canary-70-30": {"v1": 70, "v2": 30},
    "canary-5-95": {"v1": 5, "v2": 95},
    "canary-sticky": {"v1": 70, "v2": 30},
}

BLUE_GREEN: dict[str, dict[str, str]] = {
    "blue-green": {LIVE_HOST: "v1", TEST_HOST: "v2"},
    "blue-green-switch": {LIVE_HOST: "v2", TEST_HOST: "v1"},
    "blue-green-back": {LIVE_HOST: "v1", TEST_HOST: "v2"},
}

DELAY_SECONDS = 2.5  # delay.yaml: fixedDelay 2.5s, 100 % of tester's reviews calls
DELAY_TOLERANCE_SECONDS = 0.1  # the issue: "within 100 ms of the configured 2.5 s"
ABORT_FRACTION = 0.5  # abort.yaml: 50 % of tester's reviews calls answered 503 (FI)
# productpage calls reviews up to twice (Bookinfo's deliberate retry, services/README.md), so
# a page shows "reviews unavailable" only when both calls were aborted.
REVIEWS_ATTEMPTS = 2

# circuit-breaker.yaml: outlierDetection.consecutiveErrors
CONSECUTIVE_ERRORS = 2

# readiness.yaml: reviews routed to every ready pod (no subset), as a Kubernetes Service
# would; the pod the verify makes unready, then ready again.
READINESS_VERSIONS: tuple[str, ...] = ("v1", "v2", "v3")
READINESS_POD = "reviews-v2"


def page_abort_probability(
    fraction: float = ABORT_FRACTION, attempts: int = REVIEWS_ATTEMPTS
) -> float:
    """P(a page shows "reviews unavailable") = P(every attempt aborted) = fraction**attempts:
    each call rolls the fault independently (Lab decision 3: fault percentages stay random)."""
    return fraction**attempts
