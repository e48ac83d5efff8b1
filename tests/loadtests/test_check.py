"""The checker (loadtests.check) on real files through the real ``meshctl route`` (a
subprocess, as ``make check-*`` runs it)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from loadtests.check import check
from loadtests.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def run_check(name: str, path: Path) -> tuple[int, str]:
    out = io.StringIO()
    return check(EXERCISES[name], path, path.name, out), out.getvalue()


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_answer_passes_its_own_check(name: str) -> None:
    code, text = run_check(name, SCENARIOS / f"{name}.yaml")
    assert code == 0, text
    assert "RESULT: all" in text


def test_an_equivalent_answer_written_differently_passes(tmp_path: Path) -> None:
    # Relative weights 7/3 instead of 70/30: the same split (the analyzer notes it, it passes).
    mine = tmp_path / "mine.yaml"
    mine.write_text((SCENARIOS / "canary-70-30.yaml").read_text()
                    .replace("weight: 70", "weight: 7").replace("weight: 30", "weight: 3"))  # fmt: skip
    code, text = run_check("canary-70-30", mine)
    assert code == 0, text
    assert "weights sum to 10, not 100" in text  # the analyzer says so; it still passes


def test_a_wrong_answer_says_what_differs(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text((SCENARIOS / "abort.yaml").read_text().replace("value: 50", "value: 20"))
    code, text = run_check("abort", mine)
    assert code == 1
    assert "✗ reviews, end-user: tester" in text
    assert re.search(r"yours: +reviews/v2 [78]\d\.\d%, aborted 503 [12]\d\.\d%", text), text
    assert "✔ reviews, no login: reviews/v1 100.0%" in text
    assert "RESULT: 1 of 3 probes differ" in text


def test_an_invalid_file_gets_the_analyzers_words_and_nothing_else(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        (SCENARIOS / "dark-launch.yaml").read_text().replace("subset: v2", "subset: v9")
    )
    code, text = run_check("dark-launch", mine)
    assert code == 1
    assert 'subset "v9" is not defined for host reviews' in text
    assert "meshctl route" not in text and "has errors" in text
