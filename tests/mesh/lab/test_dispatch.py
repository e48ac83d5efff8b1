"""Which lab a make target drives, and ``make help``: from plain values and real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.lab.dispatch import (
    HELP_WIDTH,
    LabChoiceError,
    LabInfo,
    choose,
    help_entries,
    read_lab_file,
    render_help,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("compose", "local", "wanted", "expected"),
    [
        (True, False, "", "compose"),
        (False, True, "", "local"),
        (True, True, "local", "local"),
        (True, True, "COMPOSE", "compose"),
        (True, False, "compose", "compose"),
    ],
)
def test_the_running_lab_is_chosen(compose, local, wanted, expected) -> None:
    assert choose(compose, local, wanted) == expected


@pytest.mark.parametrize(
    ("compose", "local", "wanted", "says"),
    [
        (False, False, "", "no lab is running: start one with `make up`"),
        (True, True, "", "choose one with LAB=compose or LAB=local"),
        (True, False, "local", "LAB=local, but no local lab is running"),
        (False, True, "docker", "LAB='docker': write LAB=compose or LAB=local"),
    ],
)
def test_no_single_lab_is_a_clear_error(compose, local, wanted, says) -> None:
    with pytest.raises(LabChoiceError, match=None) as caught:
        choose(compose, local, wanted)
    assert says in str(caught.value)


def test_a_local_lab_is_its_pid_file_and_its_gateway(tmp_path: Path) -> None:
    assert read_lab_file(tmp_path) is None
    (tmp_path / "lab.json").write_text('{"pid": 1, "gateway": {"pod": "gw", "port": 18081}}')
    assert read_lab_file(tmp_path) is None  # no lab.pid: a lab run in-process, not `meshlab up`
    (tmp_path / "lab.pid").write_text(f"{os.getpid()}\n")
    info = read_lab_file(tmp_path)
    assert info == LabInfo(os.getpid(), "http://127.0.0.1:18081") and info.alive
    (tmp_path / "lab.json").write_text("{not json")
    assert read_lab_file(tmp_path) is None
    (tmp_path / "lab.json").write_text('{"gateway": {"port": "x"}}')
    assert read_lab_file(tmp_path) is None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert not LabInfo(int(gone.stdout), "http://x").alive  # a stale pid is no lab


def test_help_entries_follow_sections_and_skip_what_is_not_a_target() -> None:
    lines = [
        "help: ## first, before any section",
        "##@ Strategies",
        "reset: ## Baseline",
        "\t@echo 'x: ## not a target'",
        "# comment: ## no",
        "VAR := a ## no",
        "verify-%: ## pattern rules count too",
        "##@ lab",
        "up: image ## Start",
    ]
    found = [(e.group, e.target, e.text) for e in help_entries(lines)]
    assert found == [
        ("develop", "help", "first, before any section"),
        ("strategies", "reset", "Baseline"),
        ("strategies", "verify-%", "pattern rules count too"),
        ("lab", "up", "Start"),
    ]


def test_help_groups_in_order_wraps_to_80_columns_and_takes_new_groups(tmp_path: Path) -> None:
    fragment = tmp_path / "extra.mk"
    fragment.write_text(
        "##@ console\nconsole: ## " + "a long description " * 8 + "\n"
        "##@ lab\nextra-lab: ## from a fragment\n"
    )
    text = render_help([ROOT / "Makefile", ROOT / "compose/compose.mk",
                        ROOT / "loadtests/loadtests.mk", fragment])  # fmt: skip
    lines = text.splitlines()
    assert all(len(line) <= HELP_WIDTH for line in lines), max(lines, key=len)
    headings = [
        line[:-1] for line in lines if line and not line.startswith(" ") and ":" == line[-1]
    ]
    assert headings == ["lab", "strategies", "verify", "security", "observe", "develop", "console"]
    assert "  extra-lab" in text.split("\nstrategies:")[0]


def test_make_help_lists_every_lab_target_in_its_group() -> None:
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    groups: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = line[:-1]
        elif line.startswith("  ") and line[2] != " ":
            groups.setdefault(current, []).append(line.split()[0])
    assert {"up", "up-local", "down"} <= set(groups["lab"])
    assert {"reset", "canary-70-30", "readiness-fail", "readiness-pass"} <= set(
        groups["strategies"]
    )
    assert {"verify-all", "verify-readiness", "check-dark-launch"} <= set(groups["verify"])
    assert {"status", "locust", "logs"} <= set(groups["observe"])
    assert all(len(line) <= HELP_WIDTH for line in out.splitlines())


def test_the_dispatcher_runs_on_a_bare_python_without_the_venv(tmp_path: Path) -> None:
    # The compose lab's host has python3 and no venv: the dispatcher imports only the
    # standard library (python -S -I: no site-packages, no user paths).
    done = subprocess.run(
        [sys.executable, "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "import mesh.lab.dispatch as d, loadtests.exercises as e; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] in "
         "('yaml', 'flask', 'requests', 're2', 'locust', 'gevent')))", str(ROOT)],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert done.stdout.strip() == "[]"
    env = {"PATH": os.environ["PATH"], "MESH_DIR": str(tmp_path), "MESHLAB_PROJECT": "meshlab-none-here",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    status = subprocess.run([sys.executable, "-S", "-m", "mesh.lab.dispatch", "status"],
                            cwd=tmp_path, capture_output=True, text=True, env=env)  # fmt: skip
    assert status.returncode == 2 and "no lab is running" in status.stderr
