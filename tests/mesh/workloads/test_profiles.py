"""Profiles parse into workload files and a baseline, or say what is wrong and where."""

from __future__ import annotations

from mesh.workloads.profiles import ProfileEntry, parse_profile


def test_a_profile_lists_files_with_optional_namespaces_and_a_baseline() -> None:
    spec, issues = parse_profile(
        "p",
        "description: x\nworkloads:\n- a.yaml\n- {file: b.yaml, namespace: foo}\n"
        "baseline: scenarios/reset.yaml\n",
        "p.yaml",
    )
    assert issues == []
    assert spec is not None
    assert spec.workloads == (ProfileEntry("a.yaml"), ProfileEntry("b.yaml", "foo"))
    assert (spec.baseline, spec.description) == ("scenarios/reset.yaml", "x")


def test_bad_profiles_say_where() -> None:
    for text, fragment in (
        ("workloads: []\n", "p.yaml:1"),
        ("workloads:\n- a.yaml\nbaseline: [x]\n", "p.yaml:3"),
        ("workloads:\n- {file: a.yaml, ns: foo}\n", "p.yaml:2"),
        ("workload:\n- a.yaml\n", "unknown field 'workload'"),
    ):
        spec, issues = parse_profile("p", text, "p.yaml")
        assert spec is None
        assert fragment in str(issues[0]), issues
