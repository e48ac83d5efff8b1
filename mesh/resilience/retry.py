"""Retry policy: ``RetryPolicy.from_config``, ``should_retry`` and ``backoff``.

When a route sets no ``retries``, Istio's default applies (retry.go ``DefaultPolicy``): two
retries on ``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes``
with no status codes listed, so an application 503 is *not* retried. Retries pick another
host. Injected aborts never reach this module: they are answered before any upstream try.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mesh.config.model import HTTPRetry
from mesh.config.retry_on import parse_retry_on

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
BACKOFF_BASE = 0.025
BACKOFF_MAX = 0.25

LOCAL_FAILURE_KINDS = ("connect-failure", "reset", "timeout")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    per_try_timeout: float | None
    retry_on: frozenset[str]
    retriable_status_codes: frozenset[int]

    @classmethod
    def from_config(cls, retries: HTTPRetry | None) -> RetryPolicy:
        if retries is None:
            return DEFAULT_RETRY
        attempts = retries.attempts or 0
        tokens, codes = parse_retry_on(retries.retry_on or DEFAULT_RETRY_ON)
        return cls(attempts, retries.per_try_timeout, tokens, codes)


DEFAULT_RETRY = RetryPolicy(2, None, *parse_retry_on(DEFAULT_RETRY_ON))
NO_RETRY = RetryPolicy(0, None, frozenset(), frozenset())


def should_retry(
    policy: RetryPolicy,
    status: int | None,
    local_failure: bool = False,
    failure_kind: str = "connect-failure",
) -> bool:
    """Is this outcome of one try retriable under ``policy`` (attempts are counted by the caller)?

    ``status`` is the upstream's response status; with ``local_failure`` there was none and
    ``failure_kind`` says what happened: ``connect-failure``, ``reset`` (connection closed or
    reset before a response) or ``timeout`` (per-try timeout).
    """
    on = policy.retry_on
    if policy.attempts <= 0:
        return False
    if local_failure or status is None:
        if "5xx" in on or "reset" in on:
            return True
        if failure_kind == "connect-failure":
            return "connect-failure" in on or "reset-before-request" in on
        if failure_kind == "timeout":
            return "gateway-error" in on
        return False
    if status >= 500 and "5xx" in on:
        return True
    if status in (502, 503, 504) and "gateway-error" in on:
        return True
    if status == 409 and "retriable-4xx" in on:
        return True
    return status in policy.retriable_status_codes and "retriable-status-codes" in on


def backoff(attempt: int, rng: random.Random, base: float = BACKOFF_BASE) -> float:
    """Envoy's fully jittered exponential back-off before retry number ``attempt`` (1-based)."""
    ceiling = min(BACKOFF_MAX, base * ((1 << max(attempt, 1)) - 1))
    return rng.uniform(0.0, ceiling)
