"""How the control plane reports findings to meshctl: the one place ``apply`` (the
transaction's lines, ``mesh.manager.apply``), ``analyze`` and ``status`` share.

Primitives: ``split_by_file(issues, files)`` (the findings about the files you gave, and the
rest: live resources you did not touch), ``count_text(issues)`` ("2 errors, 1 warning"; Info
lines are "notes"), ``worst(issues)`` (the highest severity present), ``sort_issues``,
``print_issues`` and ``live_note(issues, where)`` (the one line that says the live config
still carries findings from earlier). Severity words are Istio's (Error, Warning, Info); an
Error is what refuses config, everywhere: ``analyze`` exits 1 on one, ``apply`` writes
nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TextIO

from mesh.config.issues import Issue

NOUNS = {
    "Error": ("error", "errors"),
    "Warning": ("warning", "warnings"),
    "Info": ("note", "notes"),
}


def split_by_file(
    issues: Iterable[Issue], files: Collection[str]
) -> tuple[list[Issue], list[Issue]]:
    """(findings about ``files`` or about no file at all, findings about other files)."""
    mine: list[Issue] = []
    other: list[Issue] = []
    for issue in issues:
        (mine if not issue.file or issue.file in files else other).append(issue)
    return mine, other


def count_text(
    issues: Iterable[Issue], severities: Sequence[str] = ("Error", "Warning", "Info")
) -> str:
    counts = {s: 0 for s in severities}
    for issue in issues:
        if issue.severity in counts:
            counts[issue.severity] += 1
    parts = [f"{n} {NOUNS[s][0] if n == 1 else NOUNS[s][1]}" for s, n in counts.items() if n]
    return ", ".join(parts) if parts else "no findings"


def worst(issues: Iterable[Issue]) -> str | None:
    severities = {i.severity for i in issues}
    return next((s for s in ("Error", "Warning", "Info") if s in severities), None)


def sort_issues(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.file, i.line, i.path))


def print_issues(issues: Iterable[Issue], out: TextIO, indent: str = "") -> None:
    for issue in issues:
        print(f"{indent}{issue}", file=out)


def live_note(issues: Iterable[Issue], where: str) -> str | None:
    """One line about findings on live resources the command did not touch (Info excluded)."""
    relevant = [i for i in issues if i.severity in ("Error", "Warning")]
    if not relevant:
        return None
    return (
        f"note: the live config ({where}) still carries {count_text(relevant)} about resources "
        "you did not give here; meshctl status lists them"
    )
