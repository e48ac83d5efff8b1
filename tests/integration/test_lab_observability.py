"""The local lab observes itself: a real Prometheus scrapes every proxy it learns from the
registry (file SD written by the manager), and the console shows every pod, the config
version and the timeline. (Edges need the sidecars' Istio metrics; the tests with stand-in
exporters are in test_observability.py.)"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mesh.lab.local import LocalLab, free_ports
from tests.helpers import headless_chromium

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


# --- the sidecars' own telemetry: Istio's metrics in a real Prometheus, traces in the console ---


def prom(plan: Any, query: str) -> list[dict[str, Any]]:
    body = requests.get(
        f"{plan.prometheus_url}/api/v1/query", params={"query": query}, timeout=5
    ).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def by_version(plan: Any, query: str) -> dict[str, float]:
    return {
        r["metric"].get("destination_version", ""): float(r["value"][1]) for r in prom(plan, query)
    }


REVIEWS_SPLIT = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 70
    - destination: {host: reviews, subset: v3}
      weight: 30
"""
COUNT = 'sum(istio_requests_total{reporter="source",destination_app="reviews"}) by (destination_version)'
ISTIO_DOCS = (
    'sum(rate(istio_requests_total{reporter="source",destination_app="reviews"}[30s])) '
    "by (destination_version)"
)


def test_istios_promql_returns_the_split_the_pages_saw(gw: Any, tmp_path: Any):
    plan = owned(gw.lab)
    split = tmp_path / "reviews-70-30.yaml"
    split.write_text(REVIEWS_SPLIT)
    code, output = gw.lab.apply(split)
    assert code == 0, output

    def pages(count: int, until_both: bool = False) -> dict[str, int]:
        served: dict[str, int] = {}
        for _ in range(count):
            for hop in gw.served_by(gw.get()):
                if hop.startswith("reviews-"):
                    version = hop.split("-")[1]
                    served[version] = served.get(version, 0) + 1
            if until_both and {"v1", "v3"} <= set(served):
                break
        return served

    # rate() counts only what a series gained after its first sample: a series born with the
    # measured pages would lose those counted before it was first scraped. So both series
    # first exist (a few pages, stopped once both versions answered), are scraped, and hold
    # still (two equal reads a scrape apart) before the measured pages.
    assert {"v1", "v3"} <= set(pages(20, until_both=True))
    before: dict[str, float] = {}
    deadline = time.monotonic() + 15  # scraped every second
    while True:
        time.sleep(1.5)
        now = by_version(plan, COUNT)
        if {"v1", "v3"} <= set(now) and now == before:
            break
        assert time.monotonic() < deadline, now
        before = now
    served = pages(100)
    assert set(served) == {"v1", "v3"}, served

    def counted() -> dict[str, float]:
        after = by_version(plan, COUNT)
        delta = {v: after.get(v, 0.0) - before.get(v, 0.0) for v in after}
        return {v: n for v, n in delta.items() if n > 0}

    deadline = time.monotonic() + 15  # scraped every second
    while counted() != served:
        assert time.monotonic() < deadline, (counted(), served)
        time.sleep(1)
    # The query of Istio's docs, unchanged: both versions, in the pages' proportion
    # (rate extrapolates over its window: within 5 points, generous).
    rates = by_version(plan, ISTIO_DOCS)
    assert set(rates) == {"v1", "v3"}, rates
    share = rates["v1"] / (rates["v1"] + rates["v3"])
    assert abs(share - served["v1"] / 100) < 0.05, (rates, served)


def traced_page(gw: Any, session: Any = None, path: str = "/productpage") -> tuple[str, Any]:
    """A page requested with a b3 context of our own (Envoy takes it), so its trace is known."""
    trace_id = uuid.uuid4().hex[:16]
    headers = {"Host": "bookinfo.local", "x-b3-traceid": trace_id, "x-b3-spanid": trace_id,
               "x-b3-sampled": "1"}  # fmt: skip
    session = session or gw.client()
    return trace_id, session.get(gw.url + path, headers=headers, timeout=20)


def trace(plan: Any, trace_id: str, expect: int) -> list[dict[str, Any]]:
    """The trace from the console's Zipkin API once it holds ``expect`` spans (sent in
    batches, at least once a second)."""
    deadline = time.monotonic() + 15
    while True:
        response = requests.get(f"{plan.console_url}/api/v2/trace/{trace_id}", timeout=5)
        spans = response.json() if response.ok else []
        if len(spans) >= expect:
            return list(spans)
        assert time.monotonic() < deadline, spans
        time.sleep(0.5)


def spans_of(spans: list[dict[str, Any]], service: str, kind: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["localEndpoint"]["serviceName"] == service and s["kind"] == kind]


def test_every_page_is_one_joined_trace(gw: Any, tmp_path: Any):
    plan = owned(gw.lab)
    every = tmp_path / "reviews-all.yaml"
    every.write_text(
        REVIEWS_SPLIT.replace("weight: 70", "weight: 50").replace("weight: 30", "weight: 50")
    )
    code, output = gw.lab.apply(every)
    assert code == 0, output
    for _ in range(4):
        trace_id, page = traced_page(gw)
        assert page.status_code == 200
        chain = gw.served_by(page)
        reviews = next(h for h in chain if h.startswith("reviews-"))
        with_ratings = reviews in ("reviews-v2", "reviews-v3")
        # gateway + productpage + details + reviews (+ ratings): a CLIENT span at the caller's
        # proxy and a SERVER span at the callee's for each hop.
        expect = 2 * (4 if with_ratings else 3)
        spans = trace(plan, trace_id, expect)
        assert {s["traceId"] for s in spans} == {trace_id}
        services = {s["localEndpoint"]["serviceName"] for s in spans}
        wanted = {"istio-ingressgateway.istio-system", "productpage.default",
                  "details.default", "reviews.default"}  # fmt: skip
        if with_ratings:
            wanted.add("ratings.default")
        assert wanted <= services, services
        # Joined: every span hangs off another span of the trace (or off our own root).
        ids = {s["id"] for s in spans} | {trace_id}
        assert all(s.get("parentId") in ids for s in spans if s["kind"] == "CLIENT"), spans
        for server in (s for s in spans if s["kind"] == "SERVER"):
            client = [s for s in spans if s["kind"] == "CLIENT" and s["id"] == server["id"]]
            assert client and server.get("shared") is True, server
        (edge,) = spans_of(spans, "istio-ingressgateway.istio-system", "CLIENT")
        assert edge["name"] == "productpage.default.svc.cluster.local:9080/*"
        # Envoy's names on both sides of a hop: the Service port (9080), in this lab too,
        # where every sidecar listens on a loopback port of its own.
        for span in spans:
            host = span["localEndpoint"]["serviceName"].split(".")[0]
            if span["kind"] == "SERVER":
                assert span["name"] == f"{host}.default.svc.cluster.local:9080/*", span
            else:
                assert span["name"].endswith(".default.svc.cluster.local:9080/*"), span
        assert edge["tags"]["http.status_code"] == "200"


def test_a_delay_shows_on_the_testers_reviews_span(gw: Any):
    plan = owned(gw.lab)
    gw.apply("delay")
    tester = gw.login("tester")
    trace_id, page = traced_page(gw, session=tester)
    assert page.status_code == 200
    spans = trace(plan, trace_id, 8)
    (call,) = [s for s in spans_of(spans, "productpage.default", "CLIENT")
               if s["name"].startswith("reviews.")]  # fmt: skip
    assert call["duration"] >= 2_500_000, call  # microseconds
    assert call["tags"]["response_flags"] == "DI"


def test_an_abort_shows_as_503_fi_on_the_failed_calls_span(gw: Any):
    plan = owned(gw.lab)
    gw.apply("abort")  # 50 % of the tester's reviews calls
    tester = gw.login("tester")
    traces = [traced_page(gw, session=tester)[0] for _ in range(10)]
    time.sleep(2.5)  # every span at the collector (sent at least once a second)
    failed = []
    for trace_id in traces:
        spans = trace(plan, trace_id, 4)
        failed += [s for s in spans_of(spans, "productpage.default", "CLIENT")
                   if s["name"].startswith("reviews.") and s["tags"]["response_flags"] == "FI"]  # fmt: skip
    # At 50 %, ten pages without one abort: 1 in 1024.
    assert failed, traces
    for span in failed:
        assert span["tags"]["http.status_code"] == "503" and span["tags"]["error"] == "true"


def test_an_ejection_shows_in_meshctl_endpoints_and_the_graph(gw: Any):
    plan = owned(gw.lab)
    gw.apply("circuit-breaker")
    env = dict(os.environ, MESH_DIR=str(gw.lab.mesh.root))

    def endpoints() -> str:
        return subprocess.run(
            [sys.executable, "-m", "mesh.cli.meshctl", "endpoints", "details"],
            env=env, capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip

    ejected_at = None
    for i in range(30):
        status = gw.get("/api/v1/products/0").status_code
        rows = {line.split()[0]: line for line in endpoints().splitlines()[1:] if line.strip()}
        if "EJECTED" in rows.get("details-v2-failing", ""):
            ejected_at = i
            break
        assert status in (200, 503)
    # Within one request of the ejection: the request that ejected it is the last 503, and
    # meshctl run right after it shows the ejection.
    assert ejected_at is not None and ejected_at < 6, rows
    line = rows["details-v2-failing"]
    assert re.search(r"EJECTED \d+(\.\d)?s left \(by productpage-v1\)", line), line
    assert "EJECTED" not in rows["details-v2"]
    graph = requests.get(f"{plan.console_url}/api/graph", timeout=10).json()
    node = next(n for n in graph["nodes"] if n["id"] == "details-v2")
    assert [e["pod"] for e in node["ejected"]] == ["details-v2-failing"], node
    assert any(b["kind"] == "ejected" for b in node["badges"]), node


def graph_edge(plan: Any, source: str, target: str) -> dict[str, Any] | None:
    graph = requests.get(f"{plan.console_url}/api/graph?duration=30s", timeout=10).json()
    return next(
        (e for e in graph["edges"] if e["source"] == source and e["target"] == target), None
    )


@pytest.mark.browser
def test_console_in_chromium_follows_a_canary_and_opens_a_real_trace(gw: Any):
    """The real lab, no stand-ins: the graph reflects the canary within 2 s of apply --wait
    returning, the page shows the configured weight, and a trace of a real page opens."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    plan = owned(gw.lab)
    for _ in range(20):
        gw.get()  # traffic from the gateway to productpage before the change
    edge_css = 'g.edge[data-source="istio-ingressgateway"][data-target="productpage-v2"] text'
    driver = headless_chromium()
    try:
        driver.get(plan.console_url + "/")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_element(By.ID, "config-version").text not in ("", "–"))
        gw.apply("canary-70-30")  # meshctl apply --wait
        applied = time.monotonic()
        while (edge := graph_edge(plan, "istio-ingressgateway", "productpage-v2")) is None or (
            edge["configured_share"] != 0.3
        ):
            assert time.monotonic() - applied < 2.0, edge
            time.sleep(0.05)
        for _ in range(30):
            gw.get()
        trace_id, page = traced_page(gw)
        assert page.status_code == 200
        trace(plan, trace_id, 6)
        label = wait.until(
            lambda d: [
                e for e in d.find_elements(By.CSS_SELECTOR, edge_css)
                if "configured 30 %" in (e.get_attribute("textContent") or "")
            ]
        )[0]  # fmt: skip
        assert "req/s" in (label.get_attribute("textContent") or "")
        row = wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-trace-id="{trace_id}"]')
        )[0]
        row.click()
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".waterfall .span-row"))
        texts = [r.text for r in rows]
        assert len(texts) >= 6, texts
        assert "istio-ingressgateway.istio-system" in texts[0] and "✓ 200" in texts[0]
        assert any("reviews.default" in t for t in texts), texts
    finally:
        driver.quit()


# --- a pod without a sidecar: nothing reports it, the callee's sidecar calls it unknown ------

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def legacy_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLab]:
    """istio.io's mTLS-migration setting, small: httpbin in foo (sidecar), sleep in legacy
    (none), with the console's collector and Prometheus."""
    workloads = [
        f"{ROOT / 'workloads' / 'samples' / 'httpbin.yaml'}=foo",
        ROOT / "workloads" / "samples" / "legacy-namespace.yaml",
        f"{ROOT / 'workloads' / 'samples' / 'sleep.yaml'}=legacy",
    ]
    lab = LocalLab(
        tmp_path_factory.mktemp("legacy") / "mesh", gateway_port=free_ports(1)[0], grace=8.0,
        out=io.StringIO(), workloads=workloads, baseline=None,
    )  # fmt: skip
    try:
        lab.start(timeout=240)
        yield lab
    finally:
        lab.stop()


def admin_stats(lab: LocalLab, pod: str) -> str:
    port = lab.plans[pod].ports.admin
    return requests.get(
        f"http://127.0.0.1:{port}/stats/prometheus", timeout=5, proxies={"http": "", "https": ""}
    ).text


def istio_requests(text: str) -> list[dict[str, str]]:
    """The label sets of ``istio_requests_total`` series in an exposition text."""
    return [
        dict(re.findall(r'(\w+)="([^"]*)"', line))
        for line in text.splitlines()
        if line.startswith("istio_requests_total{")
    ]


def test_a_client_without_sidecar_is_unknown_to_the_destination_and_reports_nothing(
    legacy_lab: LocalLab,
) -> None:
    lab = legacy_lab
    plan = lab.observability
    assert plan is not None and plan.prometheus_binary is not None, "apt-get install prometheus"
    assert lab.plans["sleep.legacy"].pod.proxy == "none", list(lab.plans)
    trace_id = uuid.uuid4().hex[:16]
    result = subprocess.run(
        [sys.executable, "-m", "mesh.cli.meshlab", "exec", "sleep.legacy", "--mesh-dir",
         str(lab.mesh.root), "--", "curl", "-s", "-H", f"x-b3-traceid: {trace_id}",
         "-H", f"x-b3-spanid: {trace_id}", "-H", "x-b3-sampled: 1",
         "http://httpbin.foo:8000/headers"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)["headers"]
    # The client's b3 context reached the app as sent: nothing in between made a span.
    assert headers["X-B3-Traceid"] == [trace_id] and headers["X-B3-Spanid"] == [trace_id]
    assert "X-B3-Parentspanid" not in headers and "X-Envoy-Peer-Metadata" not in headers

    # The destination's sidecar reports it: source unknown, plaintext.
    def inbound() -> list[dict[str, str]]:
        return [
            s for s in istio_requests(admin_stats(lab, "httpbin.foo"))
            if s["reporter"] == "destination" and s["response_code"] == "200"
        ]  # fmt: skip

    deadline = time.monotonic() + 5  # recorded once the response is written
    while not inbound():
        assert time.monotonic() < deadline, admin_stats(lab, "httpbin.foo")
        time.sleep(0.2)
    (series,) = inbound()
    assert series["source_workload"] == "unknown" and series["source_app"] == "unknown"
    assert series["source_workload_namespace"] == "unknown"
    assert series["connection_security_policy"] == "none"
    assert series["destination_workload"] == "httpbin" and series["destination_app"] == "httpbin"
    # The client's pod reports nothing: no Istio series, no tracer.
    legacy = admin_stats(lab, "sleep.legacy")
    assert istio_requests(legacy) == [] and "mesh_tracing_zipkin" not in legacy
    # One span in the trace: the destination's SERVER span, named by the Service port
    # (8000; the container listens on 8080, the process-mode listener on a loopback port).
    trace(plan, trace_id, 1)
    time.sleep(1.5)  # anything else sent in the same second would be here by now
    spans = trace(plan, trace_id, 1)
    assert [(s["kind"], s["localEndpoint"]["serviceName"], s["name"]) for s in spans] == [
        ("SERVER", "httpbin.foo", "httpbin.foo.svc.cluster.local:8000/*")
    ], spans
    assert spans[0]["id"] == trace_id and spans[0]["tags"]["http.status_code"] == "200"
    # Prometheus has it too, as Kiali would read it: an unknown source.
    query = 'sum(istio_requests_total{reporter="destination",destination_app="httpbin"}) by (source_workload)'
    deadline = time.monotonic() + 15
    while (found := {r["metric"].get("source_workload") for r in prom(plan, query)}) != {"unknown"}:
        assert time.monotonic() < deadline, found
        time.sleep(1)
    # The console draws it as Kiali does: from the unknown node (only the callee reported it).
    graph = requests.get(f"{plan.console_url}/api/graph?duration=60s", timeout=10).json()
    edges = [(e["source"], e["target"], e["requests"]) for e in graph["edges"]]
    assert edges == [("unknown", "httpbin-v1", 1)], graph
    assert {n["id"]: n["kind"] for n in graph["nodes"]}["unknown"] == "unknown"


# --- the Done point: the graph's canary shares are the verify's counts (1 pp) ------------------

CANARY_REQUESTS = 300


def test_the_graphs_canary_shares_match_what_the_verify_counted(gw: Any) -> None:
    """``make verify-canary-70-30`` (its engine, ``loadtests.verify``, as ``make`` runs it on
    the local lab) over 200 + 304 requests with no other traffic, then ``/api/graph`` over a
    window that starts in the quiet before the run and ends after a scrape that holds its last
    request: the gateway -> productpage edges show configured 70/30 and observed shares within
    1 percentage point of the verify's own counts."""
    plan = owned(gw.lab)
    gw.apply("canary-70-30")
    time.sleep(3)  # quiet: a scrape after any earlier traffic falls inside the window's lead-in
    started = time.time()
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.verify", "canary-70-30", "--gateway", gw.url,
         "--requests", str(CANARY_REQUESTS), "--mesh-dir", str(gw.lab.mesh.root)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    match = re.search(r"served by \(all (\d+) requests\).*?v1 (\d+)/v2 (\d+)\s", run.stdout)
    assert match, run.stdout
    n, v1, v2 = (int(g) for g in match.groups())
    # 2 x 100 in sequence (the window check), then 8 users x 38 (the split check).
    assert v1 + v2 == n >= 2 * 100 + CANARY_REQUESTS, run.stdout
    time.sleep(3)  # scraped every second: the last request is in Prometheus
    # The window: from before the first request (the quiet second before ``started``) to now.
    window = int(time.time() - started) + 2
    graph = requests.get(f"{plan.console_url}/api/graph?duration={window}s", timeout=10).json()
    assert graph["prometheus"]["ok"], graph["prometheus"]
    edges = {
        e["target"]: e
        for e in graph["edges"]
        if e["source"] == "istio-ingressgateway" and e["service"] == "productpage"
    }
    assert set(edges) == {"productpage-v1", "productpage-v2"}, graph["edges"]
    counted = {"productpage-v1": v1 / n, "productpage-v2": v2 / n}
    report = {t: (e["requests"], e["share"], e["configured_share"]) for t, e in edges.items()}
    assert edges["productpage-v1"]["configured_share"] == 0.7, report
    assert edges["productpage-v2"]["configured_share"] == 0.3, report
    # The Done point's tolerance: 1 percentage point.
    for target, share in counted.items():
        assert abs(edges[target]["share"] - share) <= 0.01, (report, v1, v2, window)
    # In fact exact: the console counts the window's requests without extrapolating (Prometheus'
    # increase() over this window said 370 and 158 for the verify's 353 and 151).
    assert (edges["productpage-v1"]["requests"], edges["productpage-v2"]["requests"]) == (v1, v2)
