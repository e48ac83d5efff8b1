"""Istio's own material in the local lab: Istio's Bookinfo (profile istio) with its
networking YAML unchanged, and Istio's httpbin, sleep and fortio samples for the
circuit-breaking and mTLS-migration tasks (a sleep without sidecar in legacy)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mesh.lab.local import LocalLab, free_ports

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ISTIO = ROOT / "tests" / "fixtures" / "istio"
NETWORKING = ISTIO / "networking"


def start(tmp: Path, **kw: object) -> LocalLab:
    lab = LocalLab(tmp / "mesh", gateway_port=free_ports(1)[0], grace=8.0, out=io.StringIO(), **kw)  # type: ignore[arg-type]
    lab.start(timeout=240)
    return lab


@pytest.fixture(scope="module")
def istio_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLab]:
    lab = start(tmp_path_factory.mktemp("istio"), profile="istio")
    try:
        yield lab
    finally:
        lab.stop()


def pages(lab: LocalLab, n: int = 12) -> list[list[str]]:
    out = []
    with requests.Session() as session:
        session.trust_env = False
        for _ in range(n):
            response = session.get(
                f"{lab.gateway_url}/productpage", headers={"Host": "bookinfo.local"}, timeout=20
            )
            assert response.status_code == 200, response.text[:200]
            out.append([h.strip() for h in response.headers["x-served-by"].split(",")])
    return out


def apply(lab: LocalLab, *names: str) -> str:
    code, output = lab.apply(*(NETWORKING / n for n in names))
    assert code == 0, output
    return output


def test_profile_istio_runs_exactly_istio_s_bookinfo_with_no_traffic_config(
    istio_lab: LocalLab,
) -> None:
    assert sorted(istio_lab.plans) == sorted(
        ["productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1"]
    )
    assert list((istio_lab.mesh.config).glob("*.yaml")) == []
    # No Gateway yet: the ingress gateway serves nothing.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{istio_lab.gateway_url}/productpage", timeout=5, proxies={"http": ""})


def test_istio_s_networking_yaml_gives_istio_io_s_outcomes(istio_lab: LocalLab) -> None:
    apply(istio_lab, "bookinfo-gateway.yaml")
    # Request routing, before any rule: reviews v1, v2 and v3 all show up.
    seen = Counter(
        hop for page in pages(istio_lab, 15) for hop in page if hop.startswith("reviews")
    )
    assert set(seen) == {"reviews-v1", "reviews-v2", "reviews-v3"}
    apply(istio_lab, "destination-rule-all.yaml", "virtual-service-all-v1.yaml")
    assert all(page[1:] == ["details-v1", "reviews-v1"] for page in pages(istio_lab))
    apply(istio_lab, "virtual-service-reviews-50-v3.yaml")
    versions = Counter(page[2] for page in pages(istio_lab, 20))
    assert set(versions) == {"reviews-v1", "reviews-v3"}
    # certmanager-gateway.yaml: a Gateway and a VirtualService in istio-system, accepted; the
    # Bookinfo pages keep working beside its port-80 server (both on the gateway's 8080).
    output = apply(istio_lab, "certmanager-gateway.yaml")
    assert "cert-manager-gateway -n istio-system created" in output
    assert all(page[0] == "productpage-v1" for page in pages(istio_lab, 3))


@pytest.fixture(scope="module")
def samples_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLab]:
    workloads = [
        ISTIO / "bookinfo.yaml",
        ISTIO / "bookinfo-details-v2.yaml",
        f"{ISTIO / 'httpbin.yaml'}=foo",
        ROOT / "workloads" / "samples" / "legacy-namespace.yaml",
        f"{ISTIO / 'sleep.yaml'}=legacy",
        ISTIO / "fortio-deploy.yaml",
    ]
    lab = start(tmp_path_factory.mktemp("samples"), workloads=workloads, baseline=None)
    try:
        yield lab
    finally:
        lab.stop()


def test_virtual_service_details_v2_serves_details_v2_on_every_page(samples_lab: LocalLab) -> None:
    apply(samples_lab, "bookinfo-gateway.yaml", "destination-rule-all.yaml")
    apply(samples_lab, "virtual-service-details-v2.yaml")
    assert all(page[1] == "details-v2" for page in pages(samples_lab, 12))


def exec_in(lab: LocalLab, pod: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli.meshlab", "exec", pod, "--mesh-dir", str(lab.mesh.root), "--", *command],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_sleep_without_sidecar_reaches_httpbin_in_plaintext(samples_lab: LocalLab) -> None:
    assert samples_lab.plans["sleep.legacy"].pod.proxy == "none"
    result = exec_in(samples_lab, "sleep.legacy", "curl", "-s", "http://httpbin.foo:8000/headers")
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)["headers"]
    assert "X-Forwarded-Client-Cert" not in headers
    # kubectl's spelling works too: POD -n NAMESPACE.
    again = subprocess.run(
        [sys.executable, "-m", "mesh.cli.meshlab", "exec", "sleep", "-n", "legacy",
         "--mesh-dir", str(samples_lab.mesh.root), "--", "curl", "-s", "-o", "/dev/null",
         "-w", "%{http_code}", "http://httpbin.foo:8000/status/418"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.stdout == "418", again.stderr


CIRCUIT_BREAKER = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
  namespace: foo
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
"""


def test_the_circuit_breaking_task_with_fortio(samples_lab: LocalLab, tmp_path: Path) -> None:
    rule = tmp_path / "httpbin-dr.yaml"
    rule.write_text(CIRCUIT_BREAKER)
    code, output = samples_lab.apply(rule)
    assert code == 0, output
    url = "http://httpbin.foo:8000/get"
    calm = exec_in(
        samples_lab, "fortio-deploy", "fortio", "load", "-c", "1", "-qps", "0", "-n", "10", url
    )
    assert "Code 200 : 10 (100.0 %)" in calm.stdout, calm.stdout + calm.stderr
    busy = exec_in(
        samples_lab,
        "fortio-deploy",
        "fortio",
        "load",
        "-c",
        "3",
        "-qps",
        "0",
        "-n",
        "30",
        "-loglevel",
        "Warning",
        url,
    )
    codes = dict(
        (int(line.split()[1]), int(line.split()[3]))
        for line in busy.stdout.splitlines()
        if line.startswith("Code ")
    )
    assert sum(codes.values()) == 30, busy.stdout
    assert codes.get(503, 0) > 0 and codes.get(200, 0) > 0, busy.stdout
