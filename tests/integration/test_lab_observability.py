"""The local lab observes itself: a real Prometheus scrapes every proxy it learns from the
registry (file SD written by the manager), and the console shows every pod, the config
version and the timeline. (Edges need the sidecars' Istio metrics; the tests with stand-in
exporters are in test_observability.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration


def owned(lab: Any) -> Any:
    if not getattr(lab, "owned", False):
        pytest.skip("needs the lab this session started (not MESHLAB_TEST_ATTACH)")
    plan = lab.observability
    assert plan is not None and plan.prometheus_binary is not None, (
        "Prometheus is not on PATH: apt-get install -y prometheus (.ci/run does)"
    )
    return plan


def test_prometheus_scrapes_every_proxy_from_the_registry(lab: Any):
    plan = owned(lab)
    expected = len(lab.expected_proxies)

    def up() -> dict[str, float]:
        body = requests.get(
            f"{plan.prometheus_url}/api/v1/query",
            params={"query": 'up{job="mesh-proxies"}'},
            timeout=5,
        ).json()
        return {r["metric"]["pod"]: float(r["value"][1]) for r in body["data"]["result"]}

    deadline = time.monotonic() + 60
    while True:
        found = up()
        if len(found) >= expected and min(found.values()) == 1:
            break
        assert time.monotonic() < deadline, f"scraped: {found}"
        time.sleep(1)
    assert set(found) == set(lab.expected_proxies)
    # The proxies' own metrics made it in, labelled with the pod that reported them.
    body = requests.get(
        f"{plan.prometheus_url}/api/v1/query", params={"query": "mesh_ready"}, timeout=5
    ).json()
    assert {r["metric"]["pod"] for r in body["data"]["result"]} == set(lab.expected_proxies)


def test_the_console_shows_the_lab(lab: Any):
    plan = owned(lab)
    graph = requests.get(f"{plan.console_url}/api/graph", timeout=10).json()
    nodes = {n["id"] for n in graph["nodes"]}
    assert {
        "istio-ingressgateway",
        "productpage-v1",
        "details-v2",
        "reviews-v3",
        "ratings-v1",
    } <= nodes
    assert graph["prometheus"]["ok"] is True, graph["prometheus"]
    timeline = requests.get(f"{plan.console_url}/api/timeline", timeout=10).json()
    assert timeline and timeline[-1]["version"] == graph["config_version"]
    page = requests.get(f"{plan.console_url}/", timeout=10)
    assert page.ok and "meshlab console" in page.text
