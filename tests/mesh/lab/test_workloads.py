"""Reading the lab's workloads from disk: every profile loads and is what it says, the
control plane comes first, bad workloads stop a lab before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.lab.workloads import (
    CONTROL_PLANE,
    WORKLOADS_DIR,
    Entry,
    WorkloadError,
    lab_entries,
    lab_workloads,
    load_profile,
    profile_names,
)
from tests.helpers import DEPLOYMENT, ISTIO_BOOKINFO


def test_every_profile_loads_and_the_two_main_ones_are_what_they_say() -> None:
    assert {"course", "istio", "httpbin", "security"} <= set(profile_names())
    for name in profile_names():
        lab_workloads(lab_entries(name))  # raises on any error
    istio = lab_workloads(lab_entries("istio")).topology
    assert sorted(p.name for p in istio.app_pods) == sorted(ISTIO_BOOKINFO)
    assert load_profile("istio").baseline is None
    course = lab_workloads(lab_entries("course")).topology
    assert sorted(p.name for p in course.app_pods) == sorted(
        [*ISTIO_BOOKINFO, "productpage-v2", "details-v2", "details-v2-failing"]
    )
    assert load_profile("course").baseline == WORKLOADS_DIR.parent / "scenarios" / "reset.yaml"
    failing = next(p for p in course.app_pods if p.name == "details-v2-failing")
    assert (failing.env["FAIL_MODE"], failing.env["SERVICE_VERSION"], failing.version) == (
        "503",
        "v2",
        "v2",
    )
    (gateway,) = course.gateway_pods
    assert (gateway.name, gateway.namespace, gateway.labels["istio"]) == (
        "istio-ingressgateway",
        "istio-system",
        "ingressgateway",
    )


def test_security_profile_has_namespaces_and_a_legacy_without_sidecars() -> None:
    topology = lab_workloads(lab_entries("security")).topology
    proxies = {p.name: p.proxy for p in topology.app_pods}
    assert proxies == {
        "httpbin.foo": "sidecar",
        "sleep.foo": "sidecar",
        "httpbin.bar": "sidecar",
        "sleep.bar": "sidecar",
        "httpbin.legacy": "none",
        "sleep.legacy": "none",
    }
    assert {"foo", "bar", "legacy", "default", "istio-system"} <= set(topology.namespaces)


def test_the_lab_refuses_bad_workloads_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEPLOYMENT.replace("IMAGE", "nginx:1.27"))
    from mesh.lab.local import LocalLab

    with pytest.raises(
        WorkloadError, match=r"bad.yaml:12\) spec.template.spec.containers\[0\].image"
    ):
        LocalLab(tmp_path / "mesh", workloads=[bad])
    assert not (tmp_path / "mesh").exists()


def test_the_control_plane_file_comes_first() -> None:
    assert lab_entries("istio")[0] == Entry(CONTROL_PLANE)
