"""The verdict on one upstream try, pure: what the proxy does next.

``verdict(outcome, attempt, policy, deadline, now, replayable, budget)`` → a ``Verdict``:
``RETRY`` (drop this answer, try again after back-off), ``COMMIT`` (the answer goes to the
client, with ``flag`` added to the exchange's response flags) or ``REPLY`` (answer locally
with ``status`` and ``flag``: Envoy's 504 UT, 503 UF). The shells feed it values and act on it;
it reads no clock and touches no connection, so every case is a plain-value test, as h11's
state machine is tested.

An outcome is an HTTP status (> 0) or a local-origin failure: ``CONNECT_FAILURE``,
``RESET`` (closed or reset before a response head), ``TIMEOUT`` (per-try or route deadline
before the head). ``STALE`` says whether a reset came from a pooled connection the upstream
had closed while idle (the HTTP/1.1 keep-alive race): that is no fault of the request, so it
is tried once more on a new connection without counting as an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesh.resilience.retry import RetryPolicy, should_retry

# Local-origin outcomes (Envoy: connect failure, reset, timeout). Negative so that they can
# never be mistaken for a status code.
CONNECT_FAILURE = -1
RESET = -2
TIMEOUT = -3

FAILURE_KINDS = {CONNECT_FAILURE: "connect-failure", RESET: "reset", TIMEOUT: "timeout"}

RETRY = "retry"
COMMIT = "commit"
REPLY = "reply"


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str
    status: int = 0
    flag: str = ""


RETRY_NOW = Verdict(RETRY)
COMMIT_AS_IS = Verdict(COMMIT)
COMMIT_RETRIES_EXHAUSTED = Verdict(COMMIT, flag="URX")


def stale(outcome: int, answered: bool, replayable: bool, reused: bool) -> bool:
    """A reset before any byte of an answer on a connection taken from the pool, with the
    request body still at hand: the keep-alive race, retried once on a new connection."""
    return outcome == RESET and not answered and replayable and reused


def verdict(
    outcome: int,
    attempt: int,
    policy: RetryPolicy,
    deadline: float | None,
    now: float,
    replayable: bool = True,
    budget: bool = True,
) -> Verdict:
    """The next step after try number ``attempt`` (0-based) ended with ``outcome``.

    Another try needs attempts left under ``policy``, the request body at hand
    (``replayable``) and the cluster's retry budget (``budget``: connectionPool
    maxRetries); a local failure past the route ``deadline`` is 504 UT at once. ``URX``
    marks an answer given after retries when it would itself have been retried.
    """
    if outcome > 0:
        if not should_retry(policy, outcome, False):
            return COMMIT_AS_IS  # the common answer: nothing more to weigh
        if attempt < policy.attempts and replayable and budget:
            return RETRY_NOW
        return COMMIT_RETRIES_EXHAUSTED if attempt > 0 else COMMIT_AS_IS
    urx = ",URX" if attempt > 0 else ""
    if deadline is not None and now >= deadline:
        return Verdict(REPLY, 504, "UT" + urx)
    more = attempt < policy.attempts and replayable and budget
    if more and should_retry(policy, None, True, FAILURE_KINDS.get(outcome, "reset")):
        return RETRY_NOW
    if outcome == TIMEOUT:
        return Verdict(REPLY, 504, "UT" + urx)
    return Verdict(REPLY, 503, "UF" + urx)


def backoff_too_late(deadline: float | None, now: float, pause: float) -> bool:
    """A retry whose back-off would end at or past the route deadline is not made (504 UT)."""
    return deadline is not None and now + pause >= deadline
