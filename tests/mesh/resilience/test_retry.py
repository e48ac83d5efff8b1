"""Retry decisions: Istio's default policy, retryOn tokens, bare status codes, back-off."""

from __future__ import annotations

import random

import pytest

from mesh.config.model import HTTPRetry
from mesh.resilience.retry import DEFAULT_RETRY, RetryPolicy, backoff, should_retry


def test_default_policy_retries_connect_failures_not_application_503() -> None:
    policy = RetryPolicy.from_config(None)
    assert policy is DEFAULT_RETRY and policy.attempts == 2
    assert should_retry(policy, None, local_failure=True, failure_kind="connect-failure")
    assert not should_retry(policy, 503)
    assert not should_retry(policy, 500)


@pytest.mark.parametrize(
    ("retry_on", "status", "kind", "expected"),
    [
        ("5xx", 500, None, True),
        ("5xx", 404, None, False),
        ("5xx", None, "reset", True),
        ("gateway-error", 503, None, True),
        ("gateway-error", 500, None, False),
        ("gateway-error", None, "timeout", True),
        ("reset", None, "reset", True),
        ("connect-failure", None, "reset", False),
        ("retriable-4xx", 409, None, True),
        ("503", 503, None, True),
        ("503", 502, None, False),
    ],
)
def test_retry_on_tokens(
    retry_on: str, status: int | None, kind: str | None, expected: bool
) -> None:
    policy = RetryPolicy.from_config(HTTPRetry(attempts=3, retry_on=retry_on))
    assert (
        should_retry(policy, status, local_failure=status is None, failure_kind=kind or "reset")
        is expected
    )


def test_attempts_zero_disables() -> None:
    policy = RetryPolicy.from_config(HTTPRetry(attempts=0))
    assert not should_retry(policy, None, local_failure=True)


def test_backoff_is_jittered_and_bounded() -> None:
    rng = random.Random(3)
    delays = [backoff(attempt, rng) for attempt in (1, 2, 3, 10) for _ in range(50)]
    assert all(0.0 <= d <= 0.25 for d in delays)
    assert len(set(delays)) > 100
