"""docs/workshop.md on the compose lab: every command of the guide, in order (the local
lab's run is tests/integration/test_workshop_guide.py). `make up` and `make down` are the
session fixture's: it runs exactly those before and after every e2e test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import GATEWAY_PORT, LOCUST_PORT, ComposeLab
from tests.workshop_guide import GUIDE, GuideRun, steps

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


def test_the_guide_runs_end_to_end_on_the_compose_lab(lab: ComposeLab, tmp_path: Path) -> None:
    run = GuideRun(
        "compose",
        lab.env,
        {
            "localhost:8080": f"localhost:{GATEWAY_PORT}",
            "localhost:8089": f"localhost:{LOCUST_PORT}",
            "mine.yaml": str(tmp_path / "mine.yaml"),
        },
        skip={"make up": "the session fixture ran it", "make down": "the session fixture runs it"},
        scratch=tmp_path,
    )
    try:
        for step in steps(GUIDE.read_text()):
            run.run(step)
    finally:
        problems = run.stop_background()
    assert not problems, "\n".join(problems)
