"""The exercises (loadtests.exercises): every one with an answer and a make target, and
answers compared from plain values."""

from __future__ import annotations

import re
from pathlib import Path

from loadtests.exercises import EXERCISES, describe, differences, outcome_shares, tolerance

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def test_every_exercise_has_an_answer_and_a_make_target() -> None:
    makefile = (ROOT / "loadtests" / "loadtests.mk").read_text()
    listed = re.search(r"^EXERCISES := ((?:.*\\\n)*.*)$", makefile, re.M)
    assert listed and listed.group(1).replace("\\\n", " ").split() == list(EXERCISES)
    for name, exercise in EXERCISES.items():
        assert (SCENARIOS / f"{name}.yaml").is_file()
        assert exercise.probes, name
        assert f"check-{name}: ##" in makefile


def test_outcome_shares_and_differences_from_plain_values() -> None:
    result = {"host": "reviews", "requests": 1000, "destinations": {"reviews/v2": 500},
              "aborted": {"503": 500, "500": 0}, "delayed": 0, "no_route": 0}  # fmt: skip
    shares = outcome_shares(result)
    assert shares == {"reviews/v2": 0.5, "aborted 503": 0.5}
    assert describe(shares) == "aborted 503 50.0%, reviews/v2 50.0%"
    # Random fault rolls: 49 % against 50 % is noise at n=10,000, 45 % is a wrong answer.
    assert differences({"aborted 503": 0.5}, {"aborted 503": 0.49}, 10_000) == []
    assert differences({"aborted 503": 0.5}, {"aborted 503": 0.45}, 10_000) == [
        "aborted 503: expected 50.0%, yours 45.0%"
    ]
    # Weighted routes are exact: no tolerance beyond one request.
    assert tolerance(1.0, 10_000) == tolerance(0.0, 10_000) == 1 / 10_000
    assert differences({"reviews/v2": 1.0}, {"reviews/v1": 1.0}, 10_000) == [
        "reviews/v1: expected 0.0%, yours 100.0%",
        "reviews/v2: expected 100.0%, yours 0.0%",
    ]
