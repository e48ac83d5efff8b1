"""The compose lab on profile istio: ``make up PROFILE=istio`` runs exactly Istio's Bookinfo
with no traffic config, and Istio's networking YAML applied unchanged gives istio.io's
outcomes (certmanager-gateway.yaml accepted in istio-system); ``make exec`` runs curl in a
pod through its sidecar. Its own compose project and ports, beside the session's course lab."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import GATEWAY_PORT, PROJECT, ROOT, ComposeLab, _require_docker, lab_env

pytestmark = pytest.mark.e2e
NETWORKING = ROOT / "tests" / "fixtures" / "istio" / "networking"
# Beside the session lab's gateway (+0, admin +1) and Locust (E2E_LOCUST_PORT): +2 .. +6.
ISTIO_PORT = GATEWAY_PORT + 2


@pytest.fixture(scope="module")
def istio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeLab]:
    _require_docker()
    config_dir = tmp_path_factory.mktemp("lab-config-istio")
    ports = (ISTIO_PORT, ISTIO_PORT + 1, ISTIO_PORT + 2, ISTIO_PORT + 3, ISTIO_PORT + 4)
    env = lab_env(ports, config_dir, f"{PROJECT}-istio")
    lab = ComposeLab(env, config_dir)
    lab.make("up", "PROFILE=istio", timeout=2400)
    try:
        yield lab
    finally:
        lab.make("down", "PROFILE=istio", timeout=300)


def pages(n: int) -> list[list[str]]:
    out = []
    for _ in range(n):
        response = requests.get(
            f"http://127.0.0.1:{ISTIO_PORT}/productpage",
            headers={"Host": "bookinfo.local"},
            timeout=15,
        )
        assert response.status_code == 200, response.text[:300]
        out.append([h.strip() for h in response.headers["x-served-by"].split(",")])
    return out


def apply(lab: ComposeLab, name: str) -> str:
    return lab.meshctl("apply", "-f", "-", "--wait", stdin=(NETWORKING / name).read_text()).stdout


def test_profile_istio_on_compose(istio: ComposeLab) -> None:
    pods = istio.meshctl("proxy-status").stdout
    names = {line.split()[0] for line in pods.splitlines()[2:] if line.strip()}
    assert names == {
        "productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3",
        "ratings-v1", "istio-ingressgateway",
    }  # fmt: skip
    assert list(Path(istio.config_dir).glob("*.yaml")) == []
    assert "No resources found" in istio.meshctl("get").stderr
    apply(istio, "bookinfo-gateway.yaml")
    reviews = Counter(page[2] for page in pages(15))
    assert set(reviews) == {"reviews-v1", "reviews-v2", "reviews-v3"}
    apply(istio, "destination-rule-all.yaml")
    apply(istio, "virtual-service-all-v1.yaml")
    assert all(page[1:] == ["details-v1", "reviews-v1"] for page in pages(10))
    assert "cert-manager-gateway -n istio-system created" in apply(
        istio, "certmanager-gateway.yaml"
    )
    assert pages(2)
    curl = subprocess.run(
        ["make", "--no-print-directory", "exec", "PROFILE=istio", "POD=productpage-v1",
         "CMD=curl -s http://reviews:9080/reviews/0"],
        cwd=ROOT, env=istio.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert '"podname":"reviews-v1"' in curl.stdout.replace(" ", ""), curl.stdout + curl.stderr
