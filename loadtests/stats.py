"""The statistics behind ``make verify-<strategy>``: pure, no I/O.

Primitives:

- ``binomial_interval(n, p, confidence)`` -- the central interval ``[lo, hi]`` of a
  Binomial(n, p) count that holds with probability >= ``confidence`` (exact: summed from the
  probability mass function in log space, not the normal approximation, which is poor for a
  5 % canary over a few hundred requests).
- ``window_deviation(sequence, weights)`` -- Lab decision 3 (smooth weighted round-robin):
  every window of Σweight consecutive picks matches the weights to within one request. Returns
  the worst deviation over all such windows, so "exact" means ``<= 1``.
- ``errors_by_caller(outcomes)`` -- outlier detection is per calling proxy (istio#45128): for
  each caller, how many calls it made and at which of *its own* calls an error came back.
- ``percentile(values, q)`` -- nearest-rank percentile, for latency checks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

CONFIDENCE = 0.999  # the "binomial 99.9 % tolerance"


def _log_pmf(k: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def binomial_interval(n: int, p: float, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """Smallest central ``[lo, hi]`` with P(X < lo) <= α/2 and P(X > hi) <= α/2, where
    α = 1 - confidence and X ~ Binomial(n, p). Degenerate p (0 or 1) gives ``[np, np]``."""
    if n < 0 or not 0.0 <= p <= 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError(f"binomial_interval: n={n}, p={p}, confidence={confidence}")
    if p == 0.0 or n == 0:
        return 0, 0
    if p == 1.0:
        return n, n
    tail = (1.0 - confidence) / 2.0
    pmf = [math.exp(_log_pmf(k, n, p)) for k in range(n + 1)]
    lo, cumulative = 0, 0.0
    # Move lo up while the mass strictly below the next candidate stays within the tail.
    while lo < n and cumulative + pmf[lo] <= tail:
        cumulative += pmf[lo]
        lo += 1
    hi, cumulative = n, 0.0
    while hi > 0 and cumulative + pmf[hi] <= tail:
        cumulative += pmf[hi]
        hi -= 1
    return lo, hi


def window_deviation(
    sequence: Sequence[str], weights: Mapping[str, int], window: int | None = None
) -> tuple[float, int]:
    """Worst ``|count - expected|`` over every window of ``window`` (default Σweight)
    consecutive items, and the number of windows looked at (0 when the sequence is shorter
    than one window: nothing to judge).

    ``expected`` is ``weight * window / Σweight`` for each destination in ``weights``; an item
    that is not a destination (an error, an unknown version) counts against every window it
    is in, because it is a pick the weights did not make."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("window_deviation: weights must sum to more than 0")
    size = window if window is not None else total
    if len(sequence) < size:
        return 0.0, 0
    expected = {key: weight * size / total for key, weight in weights.items()}
    counts: Counter[str] = Counter(sequence[:size])
    worst = 0.0
    windows = 0
    for start in range(len(sequence) - size + 1):
        if start:
            counts[sequence[start - 1]] -= 1
            counts[sequence[start + size - 1]] += 1
        windows += 1
        deviation = max(abs(counts[key] - value) for key, value in expected.items())
        strangers = sum(c for key, c in counts.items() if key not in expected)
        worst = max(worst, deviation, float(strangers))
    return worst, windows


def errors_by_caller(outcomes: Sequence[tuple[str, bool]]) -> dict[str, tuple[int, list[int]]]:
    """``[(caller, failed), ...]`` in the order sent -> ``{caller: (calls, [0-based positions of
    the failed calls among that caller's own calls])}``."""
    out: dict[str, tuple[int, list[int]]] = {}
    for caller, failed in outcomes:
        calls, errors = out.get(caller, (0, []))
        if failed:
            errors.append(calls)
        out[caller] = (calls + 1, errors)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); ``nan`` for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
