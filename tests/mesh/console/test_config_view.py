"""Configured shares and badges come from the routing engine's tables, per calling proxy."""

from __future__ import annotations

from pathlib import Path

from mesh.config.normal_form import to_normal
from mesh.console.config_view import ConfigView, Proxy
from mesh.manager.yaml_files import load_paths
from mesh.snapshot import Endpoint, Snapshot
from tests.helpers import COURSE

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
PROXIES = [Proxy(p.name, p.labels) for p in COURSE.app_pods] + [
    Proxy("istio-ingressgateway", {"istio": "ingressgateway", "app": "istio-ingressgateway"}, True)
]


def view(*scenarios: str) -> ConfigView:
    result = load_paths([SCENARIOS / f"{name}.yaml" for name in ("reset", *scenarios)])
    latest = {}
    for resource in result.resources:  # later files win, as meshctl apply does
        latest[resource.key] = to_normal(resource)  # the snapshot's form, as the manager's
    endpoints = tuple(
        Endpoint(p.name, p.service, "127.0.0.1", 9000 + i, p.labels)
        for i, p in enumerate(COURSE.app_pods)
    )
    return ConfigView.build(Snapshot(7, tuple(latest.values()), endpoints), PROXIES)


def kinds(v: ConfigView, service: str) -> set[str]:
    return {b.kind for b in v.badges.get(service, [])}


def test_canary_weights_are_the_gateways_configured_shares():
    v = view("canary-70-30")
    assert v.version == 7
    assert v.configured[("istio-ingressgateway", "productpage")] == {
        "productpage-v1": 0.7,
        "productpage-v2": 0.3,
    }
    assert v.configured[("productpage-v1", "reviews")] == {"reviews-v1": 1.0}
    assert "weighted-split" in kinds(v, "productpage")


def test_a_match_makes_the_share_depend_on_the_request():
    v = view("dark-launch")
    assert v.configured[("productpage-v1", "reviews")] is None
    assert "routing" in kinds(v, "reviews")
    blue_green = view("blue-green")  # two gateway hosts, two answers
    assert blue_green.configured[("istio-ingressgateway", "productpage")] is None


def test_faults_circuit_breakers_and_all_pods_of_a_service():
    assert "fault-injection" in kinds(view("delay"), "reviews")
    assert "fault-injection" in kinds(view("abort"), "reviews")
    cb = view("circuit-breaker")
    assert "circuit-breaker" in kinds(cb, "details")
    # details v2 = two pods of one version: the whole weight on the one versioned node
    assert cb.configured[("productpage-v1", "details")] == {"details-v2": 1.0}
    everyone = view("readiness").configured[("productpage-v1", "reviews")]
    assert everyone is not None and sorted(everyone) == ["reviews-v1", "reviews-v2", "reviews-v3"]
    assert all(abs(share - 1 / 3) < 1e-9 for share in everyone.values())


def test_no_snapshot_no_view():
    assert ConfigView.build(None, PROXIES).configured == {}
