"""The compose lab's Prometheus and console: healthy containers, reachable on their loopback
ports, Prometheus scraping every proxy it learns from the registry, the console showing the
lab and accepting Zipkin spans."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import requests

from tests.e2e.conftest import CONSOLE_PORT, PROJECT, PROMETHEUS_PORT, ComposeLab

pytestmark = pytest.mark.e2e
PROXIES = 10  # nine Bookinfo pods and the gateway


def health(service: str) -> str:
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(ids) == 1, f"{service}: containers {ids}"
    state = json.loads(
        subprocess.run(
            ["docker", "inspect", "-f", "{{json .State}}", ids[0]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return str(state.get("Health", {}).get("Status"))


def test_prometheus_and_console_are_healthy_and_reachable(lab: ComposeLab):
    assert health("prometheus") == "healthy"
    assert health("console") == "healthy"
    prometheus = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    assert requests.get(f"{prometheus}/-/ready", timeout=5).ok
    deadline = time.monotonic() + 60
    while True:
        body = requests.get(
            f"{prometheus}/api/v1/query", params={"query": 'up{job="mesh-proxies"}'}, timeout=5
        ).json()
        up = {r["metric"]["pod"]: r["value"][1] for r in body["data"]["result"]}
        if len(up) == PROXIES and set(up.values()) == {"1"}:
            break
        assert time.monotonic() < deadline, f"scrape targets: {up}"
        time.sleep(1)
    assert "istio-ingressgateway" in up and "details-v2-failing" in up
    console = f"http://127.0.0.1:{CONSOLE_PORT}"
    graph = requests.get(f"{console}/api/graph?duration=30s", timeout=10).json()
    assert graph["prometheus"]["ok"] is True, graph["prometheus"]
    assert {"istio-ingressgateway", "productpage-v1", "reviews-v3"} <= {
        n["id"] for n in graph["nodes"]
    }
    timeline = requests.get(f"{console}/api/timeline", timeout=10).json()
    assert timeline and timeline[-1]["version"] == graph["config_version"]
    span = {"traceId": "463ac35c9f6413ad", "id": "463ac35c9f6413ad", "name": "e2e", "timestamp": int(time.time() * 1e6),
            "duration": 10, "localEndpoint": {"serviceName": "e2e.default"}}  # fmt: skip
    assert requests.post(f"{console}/api/v2/spans", json=[span], timeout=5).status_code == 202
    assert (
        requests.get(f"{console}/api/v2/trace/463ac35c9f6413ad", timeout=5).json()[0]["name"]
        == "e2e"
    )
    assert (
        requests.post(f"{console}/api/v2/spans", json=[{"id": "x"}], timeout=5).status_code == 400
    )


def test_the_sidecars_own_metrics_and_traces_across_containers(lab: ComposeLab):
    """Istio's metrics from every proxy (the callee knows its caller from the metadata
    exchange between containers), the PromQL of Istio's docs, and one joined trace per page
    in the console's collector (ZIPKIN_ADDRESS=console:20001 in every container)."""
    prometheus = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    console = f"http://127.0.0.1:{CONSOLE_PORT}"
    trace_id = uuid.uuid4().hex[:16]
    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{lab.gateway}/productpage", timeout=15, headers={
        "Host": "bookinfo.local", "x-b3-traceid": trace_id, "x-b3-spanid": trace_id,
        "x-b3-sampled": "1"})  # fmt: skip
    assert page.status_code == 200
    for _ in range(30):
        assert lab.get().status_code == 200

    def query(promql: str) -> list[dict]:  # type: ignore[type-arg]
        body = requests.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
        return list(body.json()["data"]["result"])

    called = (
        'sum(istio_requests_total{reporter="destination",destination_app="reviews",'
        'source_app="productpage",source_workload="productpage-v1",'
        'connection_security_policy="mutual_tls"}) by (destination_version)'
    )
    docs = (
        'sum(rate(istio_requests_total{reporter="source",destination_app="reviews"}[30s])) '
        "by (destination_version)"
    )
    deadline = time.monotonic() + 60
    while not (query(called) and query(docs)):
        assert time.monotonic() < deadline, (query(called), query(docs))
        time.sleep(1)
    # The baseline sends every reviews call to v1. An earlier test's scenario may still be in
    # the 30 s window (a flat counter rates 0, hence "> 0"), so keep the traffic going until
    # the window holds the baseline alone: a baseline that reached v2 or v3 never gets there.
    deadline = time.monotonic() + 90
    while (versions := {r["metric"]["destination_version"] for r in query(f"{docs} > 0")}) != {
        "v1"
    }:
        assert time.monotonic() < deadline, versions
        assert lab.get().status_code == 200
        time.sleep(1)
    gateway = query(
        'istio_requests_total{reporter="source",source_workload="istio-ingressgateway"}'
    )
    assert {r["metric"]["destination_workload"] for r in gateway} >= {"productpage-v1"}

    deadline = time.monotonic() + 30
    while True:
        spans = requests.get(f"{console}/api/v2/trace/{trace_id}", timeout=5)
        found = spans.json() if spans.ok else []
        services = {s["localEndpoint"]["serviceName"] for s in found}
        if {"istio-ingressgateway.istio-system", "productpage.default", "details.default",
                "reviews.default"} <= services and len(found) >= 6:  # fmt: skip
            break
        assert time.monotonic() < deadline, found
        time.sleep(1)
    assert {s["traceId"] for s in found} == {trace_id}
    deadline = time.monotonic() + 30
    while True:
        assert lab.get().status_code == 200  # traffic in the graph's 30 s window
        graph = requests.get(f"{console}/api/graph?duration=30s", timeout=10).json()
        edges = {(e["source"], e["target"]): e for e in graph["edges"]}
        if {("istio-ingressgateway", "productpage-v1"), ("productpage-v1", "reviews-v1")} <= set(
            edges
        ):
            break
        assert time.monotonic() < deadline, (sorted(edges), graph.get("prometheus"))
        time.sleep(1)
    assert edges[("istio-ingressgateway", "productpage-v1")]["rps"] > 0, edges
    # Auto mTLS between sidecars (Istio's default: every proxy has its workload identity,
    # servers are PERMISSIVE): the destination proxies say "mutual_tls" and name the peer.
    reviews = edges[("productpage-v1", "reviews-v1")]
    assert reviews["mtls"] is True, reviews
    assert reviews["principals"]["source"] == [
        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    ]
