"""docs/workshop.md, end to end on the local lab: every command of the guide, in order,
from `make up-local` to `make down` (tests/workshop_guide.py runs them; the compose lab's
run is tests/e2e/test_workshop_guide.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mesh.lab.local import free_ports, processes_mentioning
from tests.workshop_guide import GUIDE, GuideRun, steps

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]


def local_env(tmp_path: Path, gateway: int, locust: int) -> dict[str, str]:
    """A local lab of its own: its mesh directory and ports, and a compose project name
    nobody uses, so a compose lab running on this machine is not "the other lab"."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env.pop("LAB", None)
    console, prometheus = free_ports(2)
    env.update(
        MESH_DIR=str(tmp_path / "mesh"),
        GATEWAY_PORT=str(gateway),
        LOCUST_PORT=str(locust),
        CONSOLE_PORT=str(console),
        PROMETHEUS_PORT=str(prometheus),
        MESHLAB_PROJECT=f"meshlab-test-none-{os.getpid()}",
    )
    return env


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
