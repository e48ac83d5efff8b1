"""Verdicts of ``make verify-<strategy>``: pure, no I/O.

Primitives:

- ``Check`` -- one promise of a strategy: what it is, what was expected, what was observed,
  the tolerance allowed, and whether it passed (``note`` says how it was measured).
- ``render(strategy, checks)`` -- the table a trainer reads at the front of the room and CI
  reads in its log; ``exit_code(checks)`` -- 0 only when every check passed (and there is at
  least one: a verify that checked nothing proved nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEADER = ("check", "expected", "observed", "tolerance", "result")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expected: str
    observed: str
    tolerance: str
    passed: bool
    note: str = ""

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "FAIL"


def render(strategy: str, checks: Sequence[Check], preamble: Sequence[str] = ()) -> str:
    rows = [HEADER] + [(c.name, c.expected, c.observed, c.tolerance, c.result) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()

    out = [f"verify {strategy}", *preamble, line(rows[0]), line(["-" * w for w in widths])]
    out += [line(row) for row in rows[1:]]
    if any(c.note for c in checks):
        out.append("notes:")
        out += [f"  {c.name}: {c.note}" for c in checks if c.note]
    passed = sum(c.passed for c in checks)
    verdict = "PASS" if checks and passed == len(checks) else "FAIL"
    out.append(f"{verdict}: {passed}/{len(checks)} checks passed")
    return "\n".join(out)


def exit_code(checks: Sequence[Check]) -> int:
    return 0 if checks and all(c.passed for c in checks) else 1
