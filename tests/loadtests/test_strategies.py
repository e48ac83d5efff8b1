"""The promises in loadtests.strategies stay equal to scenarios/*.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loadtests.strategies import (
    ABORT_FRACTION,
    BLUE_GREEN,
    CANARY_WEIGHTS,
    CONSECUTIVE_ERRORS,
    DELAY_SECONDS,
    STRATEGIES,
    page_abort_probability,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((SCENARIOS / f"{name}.yaml").read_text()) if d]


def find(name: str, kind: str, metadata_name: str) -> dict:
    return next(
        d for d in docs(name) if d["kind"] == kind and d["metadata"]["name"] == metadata_name
    )


def weights(route: list[dict]) -> dict[str, int]:
    return {r["destination"]["subset"]: r.get("weight", 100) for r in route}


def test_every_scenario_has_a_verify_and_back():
    # The security module's stages are verified by mesh.lab.security_verify (make verify-mtls,
    # verify-authz, verify-rotation); every other scenario is a strategy of loadtests.verify.
    from mesh.lab.security_verify import AUTHZ_STAGES, MTLS_STAGES

    security = {*MTLS_STAGES, *AUTHZ_STAGES, "rotation"}
    stems = {p.stem for p in SCENARIOS.glob("*.yaml")}
    assert security <= stems
    assert sorted(STRATEGIES) == sorted(stems - security)


@pytest.mark.parametrize("name", ["canary-70-30", "canary-5-95"])
def test_canary_weights(name):
    vs = find(name, "VirtualService", "bookinfo")
    assert weights(vs["spec"]["http"][-1]["route"]) == CANARY_WEIGHTS[name]


def test_sticky_canary_pins_the_cookie_then_splits():
    http = find("canary-sticky", "VirtualService", "bookinfo")["spec"]["http"]
    assert "product-page=v2" in http[0]["match"][0]["headers"]["cookie"]["regex"]
    assert weights(http[0]["route"]) == {"v2": 100}
    assert weights(http[1]["route"]) == CANARY_WEIGHTS["canary-sticky"]


@pytest.mark.parametrize("name", sorted(BLUE_GREEN))
def test_blue_green_hosts(name):
    seen = {}
    for vs in docs(name):
        (host,) = vs["spec"]["hosts"]
        (route,) = vs["spec"]["http"]
        seen[host] = route["route"][0]["destination"]["subset"]
    assert seen == BLUE_GREEN[name]


def test_delay_and_abort():
    delay = find("delay", "VirtualService", "reviews")["spec"]["http"][0]["fault"]["delay"]
    assert delay["fixedDelay"] == f"{DELAY_SECONDS}s" and delay["percentage"]["value"] == 100
    abort = find("abort", "VirtualService", "reviews")["spec"]["http"][0]["fault"]["abort"]
    assert abort["percentage"]["value"] / 100 == ABORT_FRACTION
    assert page_abort_probability() == pytest.approx(0.25)


def test_circuit_breaker_and_readiness():
    dr = find("circuit-breaker", "DestinationRule", "details")
    assert (
        dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutiveErrors"] == CONSECUTIVE_ERRORS
    )
    vs = find("readiness", "VirtualService", "reviews")
    (destination,) = vs["spec"]["http"][0]["route"]
    assert destination["destination"] == {"host": "reviews"}  # every ready pod, no subset
