"""The compose lab is the manifests' lab: its pods are generated from them, and the static
compose file holds only what the manifests do not (manager, Locust) plus a gateway that
matches workloads/istio-system.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mesh.lab.compose import (
    SECRETS_DIR,
    SECRETS_TMPFS,
    compose_name,
    pods_compose,
    write_lab,
)
from mesh.lab.workloads import WorkloadError, lab_entries, lab_workloads, profile_names

REPO = Path(__file__).resolve().parents[3]
STATIC = yaml.safe_load((REPO / "compose" / "docker-compose.yml").read_text())["services"]


@pytest.mark.parametrize("profile", profile_names())
def test_generated_pods_are_exactly_the_profile_s_pods(profile: str, tmp_path: Path) -> None:
    topology = write_lab(tmp_path, profile, [])
    generated = json.loads((tmp_path / "pods.yml").read_text().split("\n", 1)[1])["services"]
    assert set(generated) == {compose_name(p) for p in topology.app_pods}
    for pod in topology.app_pods:
        service = generated[compose_name(pod)]
        secrets = ["--secrets-dir", SECRETS_DIR] if pod.proxy != "none" else []
        assert service["command"] == [
            "python", "-m", "mesh.lab.pod", pod.name,
            "--mesh-dir", "/mesh", "--advertise-address", compose_name(pod), *secrets,
        ]  # fmt: skip
        assert service["hostname"] == compose_name(pod)
        assert service["depends_on"] == {"manager": {"condition": "service_healthy"}}
        assert service["labels"]["meshlab.namespace"] == pod.namespace
    env = (tmp_path / "workloads" / "env").read_text().strip()
    copies = sorted(p.name for p in (tmp_path / "workloads").glob("*.yaml"))
    assert copies[0] == "00-istio-system.yaml"
    assert [part.split("=")[0].rsplit("/", 1)[1] for part in env.split(":")] == copies
    assert (tmp_path / "baseline.yaml").exists() == (profile == "course")


def test_the_static_file_runs_no_workload_pod_and_its_gateway_is_the_manifest_s() -> None:
    course = lab_workloads(lab_entries("course")).topology
    assert set(STATIC) & {compose_name(p) for p in course.app_pods} == set()
    assert {"manager", "locust", "istio-ingressgateway"} <= set(STATIC)
    (gateway,) = course.gateway_pods
    service = STATIC[compose_name(gateway)]
    command = service["command"]
    # The gateway pod's supervisor: its proxy from the manifest (mesh.lab.pod.build_gateway,
    # tested there) and its agent, whose secrets are in the container's own tmpfs.
    assert command[:4] == ["python", "-m", "mesh.lab.pod", gateway.name]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options["--secrets-dir"] == SECRETS_DIR
    assert service["tmpfs"] == [SECRETS_TMPFS]


def test_every_pod_with_a_proxy_keeps_its_secrets_in_its_own_tmpfs() -> None:
    topology = lab_workloads(lab_entries("security")).topology
    services = pods_compose(topology, "")["services"]
    for pod in topology.app_pods:
        service = services[compose_name(pod)]
        if pod.proxy == "none":
            assert "tmpfs" not in service and "--secrets-dir" not in service["command"]
            continue
        assert service["tmpfs"] == [SECRETS_TMPFS]
        assert service["command"][-2:] == ["--secrets-dir", SECRETS_DIR]
        assert not any(SECRETS_DIR in volume for volume in service["volumes"])
    manager = STATIC["manager"]
    assert "--ca-dir" in manager["command"]
    assert "ca:/var/lib/meshlab" in manager["volumes"]
    for name, other in STATIC.items():
        if name != "manager":
            assert not any(str(v).startswith("ca:") for v in other.get("volumes", [])), name


def test_bad_workloads_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: []\n")
    with pytest.raises(WorkloadError, match="bad.yaml:5"):
        write_lab(tmp_path / "out", None, [str(bad)])
    assert not (tmp_path / "out").exists()


def test_pods_compose_names_namespaced_pods_with_dashes() -> None:
    topology = lab_workloads(lab_entries("security")).topology
    names = set(pods_compose(topology, "")["services"])
    assert {"httpbin-foo", "sleep-legacy"} <= names
