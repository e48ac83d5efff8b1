"""The findings helpers meshctl's analyze, apply and status share, from plain Issues: which
findings are yours, the counts in words, the worst severity, the one live-config note."""

from __future__ import annotations

import io

from mesh.config.issues import Issue
from mesh.manager.findings import (
    count_text,
    live_note,
    print_issues,
    sort_issues,
    split_by_file,
    worst,
)

MINE = Issue("Warning", "IST0173", "selects no pods", kind="DestinationRule", file="dr.yaml")
LIVE = Issue("Error", "IST0101", "subset missing", kind="VirtualService", file="config/vs.yaml")
LOADER = Issue("Error", "IST0106", "unreadable input")  # about no file: always yours
NOTE = Issue("Info", "MSH0008", "lab decision", file="config/vs.yaml")


def test_findings_about_the_given_files_or_no_file_are_yours() -> None:
    mine, other = split_by_file([MINE, LIVE, LOADER, NOTE], {"dr.yaml"})
    assert mine == [MINE, LOADER]
    assert other == [LIVE, NOTE]


def test_counts_in_istio_s_severity_words_with_notes_for_info() -> None:
    assert count_text([]) == "no findings"
    assert count_text([LIVE]) == "1 error"
    assert count_text([LIVE, LOADER, MINE, NOTE]) == "2 errors, 1 warning, 1 note"
    assert count_text([MINE, MINE, NOTE, NOTE]) == "2 warnings, 2 notes"
    assert count_text([LIVE, MINE, NOTE], ("Error",)) == "1 error"


def test_worst_is_the_highest_severity_present() -> None:
    assert worst([]) is None
    assert worst([NOTE]) == "Info"
    assert worst([NOTE, MINE]) == "Warning"
    assert worst([MINE, LIVE, NOTE]) == "Error"


def test_issues_sort_by_file_line_and_path() -> None:
    later = Issue("Error", "IST0106", "b", file="a.yaml", line=9, path="spec")
    earlier = Issue("Error", "IST0106", "a", file="a.yaml", line=2, path="spec")
    assert sort_issues([MINE, later, earlier]) == [earlier, later, MINE]


def test_printed_one_a_line_with_the_indent() -> None:
    out = io.StringIO()
    print_issues([MINE, LIVE], out, indent="  ")
    assert out.getvalue().splitlines() == [f"  {MINE}", f"  {LIVE}"]


def test_the_live_note_counts_errors_and_warnings_and_skips_notes() -> None:
    assert live_note([], ".mesh/config") is None
    assert live_note([NOTE], ".mesh/config") is None
    note = live_note([LIVE, MINE, MINE, NOTE], ".mesh/config")
    assert note == (
        "note: the live config (.mesh/config) still carries 1 error, 2 warnings about "
        "resources you did not give here; meshctl status lists them"
    )
