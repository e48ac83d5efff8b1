"""Binomial tolerance and Σweight-window exactness (loadtests.stats)."""

from __future__ import annotations

import math
import random

import pytest

from loadtests.stats import binomial_interval, errors_by_caller, percentile, window_deviation


def _cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(("n", "p"), [(100, 0.7), (400, 0.05), (200, 0.25), (30, 0.5), (10, 0.3)])
def test_binomial_interval_is_the_tightest_999_central_interval(n, p):
    lo, hi = binomial_interval(n, p)
    tail = 0.0005
    below = _cdf(lo - 1, n, p) if lo > 0 else 0.0
    above = 1 - _cdf(hi, n, p)
    assert below <= tail + 1e-12 and above <= tail + 1e-12
    # One step tighter on either side would leave more than α/2 outside.
    assert lo == 0 or _cdf(lo, n, p) > tail
    assert hi == n or 1 - _cdf(hi - 1, n, p) > tail
    assert lo <= n * p <= hi


def test_binomial_interval_matches_the_normal_approximation_for_large_n():
    lo, hi = binomial_interval(1000, 0.7)
    sd = math.sqrt(1000 * 0.7 * 0.3)
    assert abs(lo - (700 - 3.29 * sd)) <= 2 and abs(hi - (700 + 3.29 * sd)) <= 2


def test_binomial_interval_degenerate_and_bad_input():
    assert binomial_interval(50, 0.0) == (0, 0)
    assert binomial_interval(50, 1.0) == (50, 50)
    assert binomial_interval(0, 0.5) == (0, 0)
    with pytest.raises(ValueError):
        binomial_interval(10, 1.5)
    with pytest.raises(ValueError):
        binomial_interval(10, 0.5, confidence=1.0)


def smooth_wrr(weights: dict[str, int], n: int) -> list[str]:
    """nginx's smooth weighted round-robin, as Lab decision 3 describes the gateway's picks."""
    current = dict.fromkeys(weights, 0)
    total = sum(weights.values())
    picks = []
    for _ in range(n):
        for key, weight in weights.items():
            current[key] += weight
        best = max(current, key=lambda k: current[k])
        current[best] -= total
        picks.append(best)
    return picks


@pytest.mark.parametrize("weights", [{"v1": 70, "v2": 30}, {"v1": 5, "v2": 95}, {"a": 1, "b": 2}])
def test_smooth_round_robin_is_exact_in_every_window(weights):
    sequence = smooth_wrr(weights, 5 * sum(weights.values()) + 7)
    worst, windows = window_deviation(sequence, weights)
    assert windows == len(sequence) - sum(weights.values()) + 1
    assert worst <= 1


def test_random_picks_are_not_exact():
    rng = random.Random(7)
    sequence = ["v1" if rng.random() < 0.7 else "v2" for _ in range(1000)]
    worst, _ = window_deviation(sequence, {"v1": 70, "v2": 30})
    assert worst > 1


def test_a_stranger_in_a_window_counts_against_it():
    sequence = smooth_wrr({"v1": 7, "v2": 3}, 20)
    sequence[12] = "HTTP 503"
    worst, _ = window_deviation(sequence, {"v1": 7, "v2": 3})
    assert worst >= 1
    sequence[13] = "HTTP 503"
    assert window_deviation(sequence, {"v1": 7, "v2": 3})[0] >= 2


def test_window_deviation_needs_one_full_window():
    assert window_deviation(["v1"] * 99, {"v1": 70, "v2": 30}) == (0.0, 0)
    with pytest.raises(ValueError):
        window_deviation(["v1"], {"v1": 0})


def test_window_deviation_with_an_explicit_window():
    sequence = ["v1", "v1", "v2"] * 10
    assert window_deviation(sequence, {"v1": 2, "v2": 1}, window=6) == (0.0, 25)


def test_percentile():
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 99) == 4.0
    assert percentile([5.0], 0) == 5.0
    assert math.isnan(percentile([], 50))


def test_errors_by_caller_counts_each_callers_own_calls():
    outcomes = [
        ("pp-v1", True),
        ("pp-v2", False),
        ("pp-v1", False),
        ("pp-v1", True),
        ("pp-v2", True),
        ("pp-v1", False),
    ]
    assert errors_by_caller(outcomes) == {"pp-v1": (4, [0, 2]), "pp-v2": (2, [1])}
    assert errors_by_caller([]) == {}
