"""The per-try verdict from plain values: outcome, attempt, policy, deadline, clock."""

from __future__ import annotations

import pytest

from mesh.config.model import HTTPRetry
from mesh.resilience.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from mesh.resilience.verdict import (
    COMMIT,
    CONNECT_FAILURE,
    REPLY,
    RESET,
    RETRY,
    TIMEOUT,
    Verdict,
    backoff_too_late,
    stale,
    verdict,
)

FIVE_XX = RetryPolicy.from_config(HTTPRetry(attempts=2, retry_on="5xx"))
GATEWAY = RetryPolicy.from_config(HTTPRetry(attempts=2, retry_on="gateway-error"))


@pytest.mark.parametrize(
    ("outcome", "attempt", "policy", "expected"),
    [
        (200, 0, FIVE_XX, Verdict(COMMIT)),
        (503, 0, FIVE_XX, Verdict(RETRY)),
        (503, 1, FIVE_XX, Verdict(RETRY)),
        (503, 2, FIVE_XX, Verdict(COMMIT, flag="URX")),  # attempts used up
        (404, 2, FIVE_XX, Verdict(COMMIT)),  # not retriable: no URX
        (503, 0, DEFAULT_RETRY, Verdict(COMMIT)),  # Istio's default does not retry a 503
        (CONNECT_FAILURE, 0, DEFAULT_RETRY, Verdict(RETRY)),
        (CONNECT_FAILURE, 2, DEFAULT_RETRY, Verdict(REPLY, 503, "UF,URX")),
        (RESET, 0, DEFAULT_RETRY, Verdict(REPLY, 503, "UF")),  # reset is not connect-failure
        (RESET, 0, FIVE_XX, Verdict(RETRY)),
        (TIMEOUT, 0, GATEWAY, Verdict(RETRY)),
        (TIMEOUT, 2, GATEWAY, Verdict(REPLY, 504, "UT,URX")),
        (TIMEOUT, 0, DEFAULT_RETRY, Verdict(REPLY, 504, "UT")),
        # No retry policy (a sidecar's inbound hop): the answer, or Envoy's local reply.
        (500, 0, NO_RETRY, Verdict(COMMIT)),
        (CONNECT_FAILURE, 0, NO_RETRY, Verdict(REPLY, 503, "UF")),
        (TIMEOUT, 0, NO_RETRY, Verdict(REPLY, 504, "UT")),
    ],
)
def test_outcome_attempt_policy(outcome, attempt, policy, expected) -> None:
    assert verdict(outcome, attempt, policy, None, 0.0) == expected


def test_no_retry_without_the_body_or_the_budget() -> None:
    assert verdict(503, 0, FIVE_XX, None, 0.0, replayable=False) == Verdict(COMMIT)
    assert verdict(503, 0, FIVE_XX, None, 0.0, budget=False) == Verdict(COMMIT)
    assert verdict(CONNECT_FAILURE, 0, DEFAULT_RETRY, None, 0.0, budget=False) == Verdict(
        REPLY, 503, "UF"
    )


def test_a_local_failure_past_the_route_deadline_is_504_ut() -> None:
    assert verdict(CONNECT_FAILURE, 0, DEFAULT_RETRY, 10.0, 10.0) == Verdict(REPLY, 504, "UT")
    assert verdict(RESET, 1, FIVE_XX, 10.0, 11.0) == Verdict(REPLY, 504, "UT,URX")
    assert verdict(CONNECT_FAILURE, 0, DEFAULT_RETRY, 10.0, 9.9) == Verdict(RETRY)
    # An answer is an answer, deadline or not: the body timer takes it from there.
    assert verdict(200, 0, DEFAULT_RETRY, 10.0, 11.0) == Verdict(COMMIT)


def test_back_off_past_the_deadline() -> None:
    assert backoff_too_late(1.0, 0.9, 0.1)
    assert not backoff_too_late(1.0, 0.8, 0.1)
    assert not backoff_too_late(None, 1e9, 1.0)


@pytest.mark.parametrize(
    ("outcome", "answered", "replayable", "reused", "expected"),
    [
        (RESET, False, True, True, True),
        (RESET, False, True, False, False),  # a new connection failing is a real reset
        (RESET, True, True, True, False),  # something came back
        (RESET, False, False, True, False),  # the body is gone
        (TIMEOUT, False, True, True, False),
        (CONNECT_FAILURE, False, True, True, False),
    ],
)
def test_stale_pooled_connection(outcome, answered, replayable, reused, expected) -> None:
    assert stale(outcome, answered, replayable, reused) is expected
