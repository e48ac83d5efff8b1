"""Observability on loopback with real processes: the manager, a real Prometheus (Debian's
``prometheus`` binary), the console, and stand-in proxies (``telemetry_exporter.py``) that serve
Istio's metrics from the real ``mesh.telemetry`` store fed with scripted requests — until the
sidecars emit those metrics themselves (the whole-lab tests come with that wiring).

Prometheus finds the exporters only through the file-SD list the manager writes from the
registry; the console reads metrics only through Prometheus's HTTP API. Also here: the config
timeline, ejections from the sidecars' status records, a Prometheus that goes away, and the
console page in real headless Chromium (graph edge labels, a trace waterfall).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from mesh.lab.local import free_ports
from mesh.lab.prometheus import config_yaml, find_binary
from mesh.meshdir import MeshDir
from mesh.telemetry import b3
from mesh.telemetry.b3 import TraceContext
from mesh.telemetry.zipkin import Exchange, ProxyInfo, client_span, operation_name, server_span
from tests.helpers import headless_chromium

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
EXPORTER = Path(__file__).with_name("telemetry_exporter.py")
GATEWAY = {"workload": "istio-ingressgateway", "namespace": "istio-system",
           "labels": {"app": "istio-ingressgateway", "istio": "ingressgateway"}}  # fmt: skip


def pod(name: str) -> dict[str, Any]:
    app, version = name.rsplit("-", 1)
    return {"workload": name, "labels": {"app": app, "version": version}}


def flow(source: dict, destination: dict | None, service: str, weight: int, **kw: Any) -> dict:  # type: ignore[type-arg]
    return {
        "source": source,
        "destination": destination or {},
        "service": service,
        "weight": weight,
        **kw,
    }


GATEWAY_FLOWS = [
    flow(GATEWAY, pod("productpage-v1"), "productpage", 70, ms=12.0),
    flow(GATEWAY, pod("productpage-v2"), "productpage", 30, ms=40.0),
]
PRODUCTPAGE_FLOWS = [
    flow(pod("productpage-v1"), pod("details-v1"), "details", 50),
    flow(pod("productpage-v1"), pod("reviews-v1"), "reviews", 40),
    flow(pod("productpage-v1"), None, "reviews", 10, code=503, flags="FI"),
]


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, OSError, KeyError, ValueError, TypeError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@dataclass
class ObservedLab:
    mesh: MeshDir
    tmp: Path
    prometheus_url: str
    console_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def graph(self, duration: str = "30s") -> dict[str, Any]:
        response = requests.get(
            f"{self.console_url}/api/graph", params={"duration": duration}, timeout=10
        )
        response.raise_for_status()
        return dict(response.json())

    def edge(self, graph: dict[str, Any], source: str, target: str) -> dict[str, Any] | None:
        return next(
            (e for e in graph["edges"] if e["source"] == source and e["target"] == target), None
        )

    def set_bookinfo(self, scenario: str) -> None:
        text = (SCENARIOS / f"{scenario}.yaml").read_text()
        tmp = self.mesh.config / ".bookinfo.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.mesh.config / "bookinfo.yaml")


def _start(name: str, argv: list[str], logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedLab]:
    binary = find_binary()
    if binary is None:
        pytest.fail(
            "these tests need Debian's prometheus: apt-get install -y prometheus", pytrace=False
        )
    tmp = tmp_path_factory.mktemp("observed")
    mesh = MeshDir(tmp / "mesh").create()
    logs = tmp / "logs"
    logs.mkdir()
    # The baseline without its bookinfo VirtualService, which bookinfo.yaml (a scenario) holds.
    base = [d for d in yaml.safe_load_all((SCENARIOS / "reset.yaml").read_text()) if d]
    base = [
        d
        for d in base
        if not (d["kind"] == "VirtualService" and d["metadata"]["name"] == "bookinfo")
    ]
    (mesh.config / "base.yaml").write_text(yaml.safe_dump_all(base))
    pods = [
        "productpage-v1",
        "productpage-v2",
        "details-v1",
        "reviews-v1",
        "reviews-v2",
        "ratings-v1",
    ]
    ports = free_ports(len(pods) + 3)
    admin = dict(zip(["istio-ingressgateway", *pods], ports, strict=False))
    prometheus_port, console_port = ports[-2], ports[-1]
    now = time.time()
    for name, port in admin.items():
        gateway = name == "istio-ingressgateway"
        labels = GATEWAY["labels"] if gateway else pod(name)["labels"]
        record = {
            "pod": name, "service": labels["app"], "labels": labels, "address": "127.0.0.1",
            "port": 0 if gateway else 9080, "ready": True, "heartbeat": now, "ttl": 86400.0,
            "admin_address": "127.0.0.1", "admin_port": port, "role": "gateway" if gateway else "sidecar",
        }  # fmt: skip
        (mesh.registry / f"{name}.json").write_text(json.dumps(record))
    lab = ObservedLab(
        mesh, tmp, f"http://127.0.0.1:{prometheus_port}", f"http://127.0.0.1:{console_port}"
    )
    lab.set_bookinfo("canary-70-30")
    try:
        for name, flows, rate in (
            ("istio-ingressgateway", GATEWAY_FLOWS, 100),
            ("productpage-v1", PRODUCTPAGE_FLOWS, 50),
        ):
            flows_file = tmp / f"{name}.flows.json"
            flows_file.write_text(json.dumps(flows))
            lab.procs[name] = _start(
                name,
                [
                    sys.executable,
                    str(EXPORTER),
                    "--port",
                    str(admin[name]),
                    "--flows",
                    str(flows_file),
                    "--rate",
                    str(rate),
                ],
                logs,
            )
        lab.procs["manager"] = _start(
            "manager", [sys.executable, "-m", "mesh.manager", "--mesh-dir", str(mesh.root)], logs
        )
        targets = mesh.scrape_targets
        wait_for(
            lambda: len(json.loads(targets.read_text())) == len(admin),
            30,
            "the manager's targets.json",
        )
        config = tmp / "prometheus.yml"
        config.write_text(config_yaml(targets))
        lab.procs["prometheus"] = _start(
            "prometheus",
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"],
            logs,
        )  # fmt: skip
        lab.procs["console"] = _start(
            "console",
            [sys.executable, "-m", "mesh.console", "--mesh-dir", str(mesh.root), "--port", str(console_port),
             "--prometheus", lab.prometheus_url, "--prometheus-timeout", "2"],
            logs,
        )  # fmt: skip
        wait_for(
            lambda: requests.get(f"{lab.console_url}/healthz", timeout=2).ok, 30, "the console"
        )
        wait_for(
            lambda: requests.get(f"{lab.prometheus_url}/-/ready", timeout=2).ok, 30, "Prometheus"
        )
        yield lab
    finally:
        for proc in lab.procs.values():
            proc.terminate()
        for proc in lab.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in sorted(logs.glob("*.log")):
            text = log.read_text(errors="replace").strip()
            if text:
                print(f"--- {log.name}\n{text[-2000:]}")


def canary_edges(
    lab: ObservedLab, v1_share: float, min_requests: int = 1000
) -> dict[str, Any] | None:
    graph = lab.graph()
    v1 = lab.edge(graph, "istio-ingressgateway", "productpage-v1")
    v2 = lab.edge(graph, "istio-ingressgateway", "productpage-v2")
    if not v1 or not v2 or v1["requests"] < min_requests or v1["configured_share"] != v1_share:
        return None
    return {"graph": graph, "v1": v1, "v2": v2}


def test_graph_shows_configured_weights_beside_observed_shares(observed: ObservedLab):
    # A full window of traffic (a series younger than the window under-counts its rate).
    found = wait_for(lambda: canary_edges(observed, 0.7, 1900), 90, "a window of gateway requests")
    v1, v2 = found["v1"], found["v2"]
    # The exporters split every block of 10 requests exactly 7/3: observed = configured.
    assert v1["share"] == pytest.approx(0.7, abs=0.02) and v2["share"] == pytest.approx(
        0.3, abs=0.02
    )
    assert v1["share_ci95"][0] < 0.7 < v1["share_ci95"][1]
    assert v2["share_ci95"][0] < 0.3 < v2["share_ci95"][1]
    assert (v1["configured_share"], v2["configured_share"]) == (0.7, 0.3)
    assert v1["rps"] == pytest.approx(70, rel=0.25) and v2["rps"] == pytest.approx(30, rel=0.25)
    assert v1["p95_ms"] is not None and v2["p95_ms"] > v1["p95_ms"]  # 40 ms against 12 ms
    assert v1["error_rate"] == 0.0 and v1["flags"] == {}
    nodes = {n["id"]: n for n in found["graph"]["nodes"]}
    assert nodes["istio-ingressgateway"]["kind"] == "gateway"
    assert {"productpage-v1", "productpage-v2", "reviews-v2", "ratings-v1"} <= set(
        nodes
    )  # idle pods too
    assert any(b["kind"] == "weighted-split" for b in nodes["productpage-v2"]["badges"])
    assert found["graph"]["config_version"] is not None


def test_fault_injected_aborts_land_on_the_service_node_with_their_flag(observed: ObservedLab):
    def aborted() -> dict[str, Any] | None:
        graph = observed.graph()
        edge = observed.edge(graph, "productpage-v1", "reviews")
        return edge if edge and edge["requests"] > 50 else None

    edge = wait_for(aborted, 60, "aborted reviews calls")
    assert edge["flags"]["FI"] > 50 and edge["error_rate"] == 1.0
    assert edge["share"] == pytest.approx(0.2, abs=0.03)  # 10 of every 50 reviews calls
    ok = observed.edge(observed.graph(), "productpage-v1", "reviews-v1")
    assert ok is not None and ok["error_rate"] == 0.0


def test_the_promql_of_istios_docs_returns_the_split(observed: ObservedLab):
    promql = (
        'sum(rate(istio_requests_total{reporter="source",destination_app="reviews"}[30s])) '
        "by (destination_version)"
    )

    def query(text: str) -> list[dict]:
        body = requests.get(
            f"{observed.prometheus_url}/api/v1/query", params={"query": text}, timeout=5
        ).json()
        return list(body["data"]["result"])

    def split() -> dict[str, float]:
        return {r["metric"]["destination_version"]: float(r["value"][1]) for r in query(promql)}

    # rate() reads a series' gain over the window from its own samples: until the series is
    # 30 s old (scraped every second), the window is part empty and the rate runs low.
    full = (
        'max(count_over_time(istio_requests_total{reporter="source",destination_app="reviews",'
        'destination_version="v1"}[30s]))'
    )
    wait_for(lambda: (r := query(full)) and float(r[0]["value"][1]) >= 28, 90, "a full window")
    versions = wait_for(lambda: (s := split()) and "v1" in s and s, 10, "the reviews split")
    assert versions["v1"] == pytest.approx(20, rel=0.3)  # 40 % of 50 requests/s
    # The aborted calls reached no pod: destination_app is "unknown", as in Istio.
    assert set(versions) == {"v1"}


def test_a_config_change_reaches_the_graph_and_the_timeline(observed: ObservedLab):
    observed.set_bookinfo("canary-5-95")
    started = time.monotonic()
    try:

        def moved() -> bool:
            edge = observed.edge(observed.graph(), "istio-ingressgateway", "productpage-v2")
            return bool(edge and edge["configured_share"] == 0.95)

        wait_for(moved, 10, "configured 95 % on productpage-v2", interval=0.1)
        assert time.monotonic() - started < 5  # the manager's debounce plus one graph refresh
        timeline = requests.get(f"{observed.console_url}/api/timeline", timeout=5).json()
        last = timeline[-1]
        assert last["changed"] == ["VirtualService default/bookinfo"]
        assert last["scenario"] == "canary-5-95"
        assert last["time"].endswith("Z") and last["version"] == timeline[-2]["version"] + 1
        assert (
            requests.get(f"{observed.console_url}/api/graph", timeout=5).json()["config_version"]
            == last["version"]
        )
    finally:
        observed.set_bookinfo("canary-70-30")
        wait_for(lambda: canary_edges(observed, 0.7), 15, "back to 70/30")


def test_ejected_endpoints_from_the_sidecars_status(observed: ObservedLab):
    status = {
        "pod": "productpage-v1", "version": 1,
        "ejected": [{"pod": "details-v1", "until": time.time() + 120}, {"pod": "reviews-v1", "until": time.time() - 5}],
    }  # fmt: skip
    path = observed.mesh.status / "productpage-v1.json"
    path.write_text(json.dumps(status))
    try:
        nodes = {n["id"]: n for n in wait_for(lambda: observed.graph()["nodes"], 10, "nodes")}
        time.sleep(1.1)  # past the graph cache
        nodes = {n["id"]: n for n in observed.graph()["nodes"]}
        (ejected,) = nodes["details-v1"]["ejected"]
        assert ejected["pod"] == "details-v1" and ejected["by"] == "productpage-v1"
        assert 100 < ejected["seconds_left"] <= 120
        assert any(b["kind"] == "ejected" for b in nodes["details-v1"]["badges"])
        assert nodes["reviews-v1"]["ejected"] == []  # that ejection is over
    finally:
        path.unlink()


def test_console_page_in_chromium_shows_edges_and_a_trace_waterfall(observed: ObservedLab):
    # One trace as the proxies report it: gateway → productpage, productpage → reviews aborted (FI).
    import random

    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    rng = random.Random(5)
    now_us = int(time.time() * 1e6)
    root = b3.new_trace(rng, sampled=True)
    gw = ProxyInfo.of("istio-ingressgateway", "istio-system", "istio-ingressgateway", gateway=True)
    pp = ProxyInfo.of("productpage", "default", "productpage-v1", version="v1")
    to_pp = operation_name("productpage.default.svc.cluster.local", 9080)
    to_reviews = operation_name("reviews.default.svc.cluster.local", 9080)
    page = Exchange(now_us, 60_000, "GET", "http://bookinfo.local/productpage", 200)
    call = b3.child(TraceContext(root.trace_id, root.span_id, None, True), rng)
    abort = Exchange(now_us + 10_000, 300, "GET", "http://reviews:9080/reviews/0", 503, "FI")
    spans = [
        client_span(root, gw, page, to_pp).to_json(),
        server_span(root, pp, page, to_pp, shared=False).to_json(),
        client_span(call, pp, abort, to_reviews).to_json(),
    ]
    posted = requests.post(f"{observed.console_url}/api/v2/spans", json=spans, timeout=5)
    assert posted.status_code == 202
    wait_for(lambda: canary_edges(observed, 0.7), 60, "the canary edges")

    driver = headless_chromium()
    try:
        driver.get(observed.console_url + "/")
        # The page redraws its parts as data arrives: an element found a moment ago may be
        # replaced before it is read, so a stale one means "look again", not a failure.
        wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
        edge_css = 'g.edge[data-source="istio-ingressgateway"][data-target="productpage-v2"] text'
        label = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, edge_css))[0]
        text = label.get_attribute("textContent")
        assert "req/s" in text and "of productpage" in text and "configured 30 %" in text
        assert "95 % CI" in text and "err 0 %" in text
        row = wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-trace-id="{root.trace_id}"]')
        )[0]
        assert "✗ 1 failed" in row.text
        row.click()
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".waterfall .span-row"))
        texts = [r.text for r in rows]
        assert len(texts) == 3
        assert "istio-ingressgateway.istio-system" in texts[0] and "✓ 200" in texts[0]
        failed = next(t for t in texts if "✗ 503 FI" in t)
        assert (
            "productpage.default" in failed and "reviews.default.svc.cluster.local:9080/*" in failed
        )
        # It updates without a reload: the config version on the page follows a publish.
        before = driver.find_element(By.ID, "config-version").text
        observed.set_bookinfo("canary-5-95")
        wait.until(lambda d: d.find_element(By.ID, "config-version").text != before)
        wait.until(
            lambda d: (
                "configured 95 %"
                in d.find_elements(By.CSS_SELECTOR, edge_css)[0].get_attribute("textContent")
            )
        )
    finally:
        driver.quit()
        observed.set_bookinfo("canary-70-30")


def test_prometheus_going_away_is_said_and_the_console_keeps_serving(observed: ObservedLab):
    prometheus = observed.procs["prometheus"]
    prometheus.terminate()
    prometheus.wait(timeout=20)
    time.sleep(1.1)  # past the graph cache
    graph = observed.graph()
    assert graph["prometheus"]["ok"] is False
    assert "not reachable" in graph["prometheus"]["error"]
    assert {n["id"] for n in graph["nodes"]} >= {
        "productpage-v1",
        "productpage-v2",
    }  # config still shown
    assert graph["edges"] == []
    fragment = requests.get(f"{observed.console_url}/fragment/graph", timeout=5).text
    assert "not reachable" in fragment and 'role="alert"' in fragment
    assert requests.get(
        f"{observed.console_url}/api/v2/services", timeout=5
    ).ok  # traces still served
