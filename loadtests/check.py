"""``python -m loadtests.check EXERCISE FILE``: a trainee's YAML against an exercise's answer.

    python -m loadtests.check dark-launch mine.yaml      # make check-dark-launch FILE=mine.yaml
    python -m loadtests.check dark-launch - < mine.yaml  # FILE from stdin (in a container)

1. ``meshctl analyze`` of the baseline plus the file: the analyzer's findings as it prints
   them (an error stops here, with the analyzer's words: that is the lesson);
2. every probe of the exercise (``loadtests/exercises.py``) through ``meshctl route`` twice,
   with ``-f scenarios/reset.yaml -f FILE`` and with ``-f scenarios/reset.yaml -f
   scenarios/<exercise>.yaml`` (the answer), the same seed and 10,000 simulated requests;
3. one line per probe, ✔ same or ✗ with what differs (shares beyond the 99.9 % tolerance).

Exit 0 when every probe matches, 1 when one differs or the file has errors, 2 on a usage
error. Exercises that need traffic (circuit-breaker, readiness) are then verified live by
``make check-<name>`` (``mesh/lab/dispatch.py``); this module only routes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadtests.exercises import (
    EXERCISES,
    SIMULATED_REQUESTS,
    Exercise,
    describe,
    differences,
    outcome_shares,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "reset.yaml"
MESHCTL = [sys.executable, "-m", "mesh.cli.meshctl"]


def meshctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHCTL, *args], capture_output=True, text=True, cwd=ROOT)


def route(files: list[Path], argv: list[str]) -> dict[str, Any] | str:
    """``meshctl route`` JSON, or its error text."""
    flags = [arg for path in files for arg in ("-f", str(path))]
    done = meshctl("route", *flags, *argv)
    if done.returncode != 0:
        return (done.stderr or done.stdout).strip()
    return dict(json.loads(done.stdout))


def check(exercise: Exercise, mine: Path, shown_as: str, out: Any = sys.stdout) -> int:
    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    say(f"check-{exercise.name}: {exercise.task}")
    say(f"  yours: {shown_as} (on top of scenarios/reset.yaml)")
    analysis = meshctl("analyze", str(BASELINE), str(mine))
    findings = [
        line.replace(str(mine), shown_as)
        for line in analysis.stdout.splitlines()
        # MSH0005 "replaces the definition in reset.yaml": what an exercise file is for.
        if line.strip() and not line.startswith("✔") and "[MSH0005]" not in line
    ]
    if findings:
        say("\nmeshctl analyze says:")
        for line in findings:
            say(f"  {line}")
    if analysis.returncode != 0:
        say(f"\nRESULT: {shown_as} has errors; fix what the analyzer says, then check again.")
        return 1
    answer = SCENARIOS / f"{exercise.name}.yaml"
    say(f"\nmeshctl route, {SIMULATED_REQUESTS} simulated requests per probe, against the answer:")
    differing = 0
    for probe in exercise.probes:
        expected = route([BASELINE, answer], probe.argv())
        yours = route([BASELINE, mine], probe.argv())
        if isinstance(expected, str):
            raise RuntimeError(f"the answer {answer.name} does not route: {expected}")
        if isinstance(yours, str):
            differing += 1
            say(f"  ✗ {probe.title}: meshctl route refused your file: {yours}")
            continue
        want, got = outcome_shares(expected), outcome_shares(yours)
        if not differences(want, got, SIMULATED_REQUESTS):
            say(f"  ✔ {probe.title}: {describe(got)}")
            continue
        differing += 1
        say(f"  ✗ {probe.title}")
        say(f"      expected: {describe(want)}")
        say(f"      yours:    {describe(got)}")
    total = len(exercise.probes)
    if differing:
        say(f"\nRESULT: {differing} of {total} probes differ from the expected outcome.")
        return 1
    say(f"\nRESULT: all {total} probes route as expected.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.check",
        description="Check a trainee's YAML against an exercise with meshctl route.",
    )
    parser.add_argument("exercise", choices=list(EXERCISES))
    parser.add_argument("file", help="your YAML, or - for stdin")
    args = parser.parse_args(argv)
    exercise = EXERCISES[args.exercise]
    if args.file == "-":
        with tempfile.TemporaryDirectory() as scratch:
            mine = Path(scratch) / "stdin.yaml"
            mine.write_text(sys.stdin.read())
            return check(exercise, mine, "your file")
    mine = Path(args.file)
    if not mine.is_file():
        print(f"check: no such file: {args.file}", file=sys.stderr)
        return 2
    return check(exercise, mine, args.file)


if __name__ == "__main__":
    sys.exit(main())
