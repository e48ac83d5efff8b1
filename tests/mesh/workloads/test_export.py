"""``meshlab export kube``: every exported manifest validates offline against Kubernetes'
own schemas (kubernetes-validate, strict: no unknown field), in both image modes and for
every profile; the exported pods are the lab's pods, with the images asked for."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mesh.cli.meshlab import main
from mesh.lab.workloads import lab_entries, lab_workloads, profile_names
from mesh.workloads.export import export_documents

VERSION = kubernetes_validate.latest_version()


def documents(profile: str, **kw: object) -> list[dict]:
    workloads = lab_workloads(lab_entries(profile))
    return export_documents(workloads.manifests, image="ghcr.io/example/meshlab:1.0", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("istio_images", [False, True], ids=["lab-image", "istio-images"])
@pytest.mark.parametrize("profile", profile_names())
def test_every_exported_manifest_validates_against_kubernetes_schemas(
    profile: str, istio_images: bool
) -> None:
    docs = documents(profile, istio_images=istio_images)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_validator_does_refuse_a_broken_manifest() -> None:
    deployment = next(d for d in documents("istio") if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)


def images(docs: list[dict]) -> dict[str, str]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in docs
        if d["kind"] == "Deployment"
    }


def test_images_follow_the_mode_and_the_gateway_stays_with_istio() -> None:
    lab = images(documents("course"))
    assert set(lab.values()) == {"ghcr.io/example/meshlab:1.0"}
    assert "istio-ingressgateway" not in lab
    istio = images(documents("course", istio_images=True))
    assert istio["reviews-v2"].endswith("examples-bookinfo-reviews-v2:1.20.3")
    assert istio["productpage-v2"] == "ghcr.io/example/meshlab:1.0"  # Istio has no v2
    reviews = next(d for d in documents("course") if d["metadata"]["name"] == "reviews-v3")
    container = reviews["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.serve"]
    assert container["args"] == ["reviews"]
    assert {"name": "SERVICE_VERSION", "value": "v3"} in container["env"]


def test_namespaces_are_written_out_with_injection_labels() -> None:
    docs = documents("security")
    namespaces = {
        d["metadata"]["name"]: d["metadata"]["labels"]["istio-injection"]
        for d in docs
        if d["kind"] == "Namespace"
    }
    assert namespaces == {"foo": "enabled", "bar": "enabled", "legacy": "disabled"}
    assert all(d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace")


def test_meshlab_export_kube_writes_manifests_config_and_readme(tmp_path: Path) -> None:
    assert main(["export", "kube", "--profile", "course", "-o", str(tmp_path)]) == 0
    exported = list(yaml.safe_load_all((tmp_path / "workloads.yaml").read_text()))
    assert {d["metadata"]["name"] for d in exported if d["kind"] == "Deployment"} == {
        p.name for p in lab_workloads(lab_entries("course")).topology.app_pods
    }
    assert (tmp_path / "istio-config.yaml").read_text() == (
        Path(__file__).resolve().parents[3] / "scenarios" / "reset.yaml"
    ).read_text()
    readme = (tmp_path / "README.md").read_text()
    assert "kubectl label namespace default istio-injection=enabled" in readme
    assert "VERIFY_KUBE=1" in readme
    assert main(["export", "kube", "--profile", "istio", "-o", str(tmp_path / "i")]) == 0
    assert not (tmp_path / "i" / "istio-config.yaml").exists()
