"""Every lab-facing make target on the compose lab, found by the targets themselves (the
session's `make up` started it; its `make down` ends the session): each strategy, reset,
readiness-fail/pass, status, locust and every verify (`make verify-all`). The local lab's
run of the same targets is tests/integration/test_make_targets.py."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import LOCUST_PORT, ComposeLab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

STRATEGIES = ("reset", "dark-launch", "delay", "abort", "blue-green", "blue-green-switch",
              "blue-green-back", "canary-70-30", "canary-5-95", "canary-sticky",
              "circuit-breaker", "readiness")  # fmt: skip


def test_status_and_locust_find_the_compose_lab(lab: ComposeLab) -> None:
    status = lab.make("status").stdout
    assert "SYNCED" in status and "istio-ingressgateway" in status
    locust = lab.make("locust").stdout
    assert f"Locust runs in the compose lab: http://localhost:{LOCUST_PORT}" in locust


def test_every_strategy_target_applies_to_the_compose_lab(lab: ComposeLab) -> None:
    for name in STRATEGIES:
        result = lab.make(name)
        assert f"{name} applied to the compose lab" in result.stdout, result.stdout
        if name == "blue-green":
            miss = lab.get(host="localhost")
            assert miss.status_code == 404 and 'no route: Host "localhost"' in miss.text
            assert "Hosts served: bookinfo.local, test.bookinfo.local" in miss.text
            assert miss.headers["x-meshlab-response-flags"] == "NR"
    lab.make("reset")
    assert lab.get().headers["x-served-by"] == "productpage-v1, details-v1, reviews-v1"


def reviews_v2_ready(lab: ComposeLab) -> bool:
    rows = lab.meshctl("endpoints", "reviews").stdout.splitlines()
    row = next(r for r in rows if r.split() and r.split()[0] == "reviews-v2")
    return "true" in row.lower().split()


def test_readiness_fail_and_pass(lab: ComposeLab) -> None:
    lab.make("readiness")
    lab.make("readiness-fail")
    deadline = time.monotonic() + 15
    while reviews_v2_ready(lab):
        assert time.monotonic() < deadline, "reviews-v2 still ready 15 s after readiness-fail"
        time.sleep(0.5)
    lab.make("readiness-pass")
    deadline = time.monotonic() + 15
    while not reviews_v2_ready(lab):
        assert time.monotonic() < deadline, "reviews-v2 not ready 15 s after readiness-pass"
        time.sleep(0.5)
    lab.make("reset")


def test_every_verify_passes_on_the_compose_lab(lab: ComposeLab) -> None:
    out = lab.make("verify-all", timeout=3000).stdout
    assert out.count("PASS:") == len(STRATEGIES) + 1 and "FAIL" not in out


def test_check_needs_no_venv_on_the_host_of_a_compose_lab(lab: ComposeLab) -> None:
    # A laptop with Docker and no venv: the checker runs in the manager container, the
    # trainee's file on its stdin.
    wrong = lab.make_result("check-dark-launch", "FILE=docs/exercises/dark-launch.yaml",
                            "VENV=/nonexistent-venv")  # fmt: skip
    assert wrong.returncode != 0
    assert "RESULT: 1 of 3 probes differ" in wrong.stdout, wrong.stdout + wrong.stderr
    assert "compose exec -T manager python -m loadtests.check" in wrong.stderr
    right = lab.make(
        "check-dark-launch", "FILE=scenarios/dark-launch.yaml", "VENV=/nonexistent-venv"
    )
    assert "RESULT: all 3 probes route as expected" in right.stdout
