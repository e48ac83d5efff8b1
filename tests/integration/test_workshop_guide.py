"""docs/workshop.md, end to end on the local lab: every command of the guide, in order,
from `make up-local` to `make down` (tests/workshop_guide.py runs them; the compose lab's
run is tests/e2e/test_workshop_guide.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mesh.lab.local import free_ports, processes_mentioning
from tests.workshop_guide import GUIDE, GuideRun, local_env, steps

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]


def test_the_guide_runs_end_to_end_on_the_local_lab(tmp_path: Path) -> None:
    gateway, locust = free_ports(2)
    run = GuideRun(
        "local",
        local_env(tmp_path, gateway, locust),
        {
            "localhost:8080": f"localhost:{gateway}",
            "localhost:8089": f"localhost:{locust}",
            "mine.yaml": str(tmp_path / "mine.yaml"),
        },
        scratch=tmp_path,
    )
    plan = steps(GUIDE.read_text())
    assert len([s for s in plan if "local" in s.labs]) >= 35  # the whole module
    try:
        for step in plan:
            run.run(step)
    finally:
        problems = run.stop_background()
    assert not problems, "\n".join(problems)
    # The guide ends with `make down`: the lab is gone, nothing left behind.
    deadline = time.monotonic() + 10
    while (left := processes_mentioning(str(tmp_path / "mesh"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], left
