"""The trainer's ``make verify-<strategy>`` through Locust, in the compose lab.

Each target applies its scenario (``meshctl apply --wait`` in the manager container) and runs
``python -m loadtests.verify`` with Locust inside the locust container; it exits non-zero
when any check fails, so a passing ``make`` is the assertion. The printed verdict table must
also say PASS for every row.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ComposeLab

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("strategy", ["canary-70-30", "dark-launch", "circuit-breaker"])
def test_verify_target_passes(lab: ComposeLab, strategy: str) -> None:
    lab.make("reset")
    result = lab.make(f"verify-{strategy}", timeout=600)
    output = result.stdout + result.stderr
    assert "PASS" in output and "FAIL" not in output, output[-3000:]
