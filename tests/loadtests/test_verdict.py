"""The verdict table of make verify-<strategy> (loadtests.verdict)."""

from __future__ import annotations

from loadtests.verdict import Check, exit_code, render

OK = Check("split", "v1 70%", "v1 281/v2 119", "99.9 % binomial [249, 309]", True)
BAD = Check("window", "v1 70/v2 30", "worst window off by 4", "within 1", False, "stop the swarm")


def test_render_aligns_columns_and_ends_with_the_verdict():
    text = render("canary-70-30", [OK, BAD], ["gateway http://x:8080"])
    lines = text.splitlines()
    assert lines[0] == "verify canary-70-30"
    assert lines[1] == "gateway http://x:8080"
    header, rule, first, second = lines[2:6]
    assert header.split() == ["check", "expected", "observed", "tolerance", "result"]
    assert set(rule.replace(" ", "")) == {"-"}
    # Every column starts at the same offset in every row.
    for column in ("expected", "observed", "tolerance", "result"):
        start = header.index(column)
        assert first[start - 2 : start] == "  " and second[start - 2 : start] == "  "
    assert first.endswith("PASS") and second.endswith("FAIL")
    assert "window: stop the swarm" in text
    assert lines[-1] == "FAIL: 1/2 checks passed"


def test_exit_codes():
    assert exit_code([OK]) == 0
    assert exit_code([OK, BAD]) == 1
    assert exit_code([]) == 1  # nothing checked proves nothing
    assert render("reset", []).splitlines()[-1] == "FAIL: 0/0 checks passed"


def test_all_passed():
    assert render("reset", [OK]).splitlines()[-1] == "PASS: 1/1 checks passed"
