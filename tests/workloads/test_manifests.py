"""Kubernetes manifests as the lab's topology: Istio's own samples load unchanged, the lab's
profiles are what they say, and a bad manifest is refused with its file and line."""

from __future__ import annotations

import textwrap
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
    read_workloads,
)
from mesh.workloads.images import Program, UnknownImage, program_of
from mesh.workloads.manifests import ManifestFile, parse_workloads

ISTIO = Path(__file__).resolve().parents[1] / "fixtures" / "istio"
ISTIO_BOOKINFO = [
    "productpage-v1",
    "details-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
]


def parse(text: str, namespace: str | None = None, name: str = "bad.yaml"):
    return parse_workloads([ManifestFile(name, textwrap.dedent(text), namespace)])


def errors(text: str) -> list[str]:
    return [str(i) for i in parse(text).errors]


def test_istio_s_bookinfo_yaml_loads_unchanged_as_a_topology() -> None:
    workloads = read_workloads([Entry(ISTIO / "bookinfo.yaml")])
    assert workloads.ok, workloads.issues
    topology = workloads.topology
    assert sorted(p.name for p in topology.pods) == sorted(ISTIO_BOOKINFO)
    assert sorted(s.name for s in topology.services) == [
        "details",
        "productpage",
        "ratings",
        "reviews",
    ]
    reviews = [p for p in topology.pods if p.service == "reviews"]
    assert {(p.version, p.runs, p.env["SERVICE_VERSION"]) for p in reviews} == {
        ("v1", "reviews", "v1"),
        ("v2", "reviews", "v2"),
        ("v3", "reviews", "v3"),
    }
    assert {p.service_account for p in reviews} == {"bookinfo-reviews"}
    assert all(
        p.port == 9080 and p.proxy == "sidecar" and p.readiness is None for p in topology.pods
    )


def test_the_lab_s_bookinfo_is_istio_s_plus_probes() -> None:
    ours = read_workloads([Entry(WORKLOADS_DIR / "bookinfo.yaml")]).topology
    istio = read_workloads([Entry(ISTIO / "bookinfo.yaml")]).topology

    def shape(topology):  # type: ignore[no-untyped-def]
        pods = {
            (p.name, tuple(sorted(p.labels.items())), p.service, p.service_account, p.runs)
            for p in topology.pods
        }
        return pods, {(s.key, s.ports) for s in topology.services}

    assert shape(ours) == shape(istio)
    assert all(p.readiness is not None and p.readiness.period_seconds == 1 for p in ours.pods)


def test_istio_s_httpbin_sleep_curl_and_fortio_load_unchanged() -> None:
    entries = [Entry(ISTIO / f, "foo") for f in ("httpbin.yaml", "sleep.yaml", "curl.yaml")]
    entries.append(Entry(ISTIO / "fortio-deploy.yaml"))
    workloads = read_workloads(entries)
    assert workloads.ok, workloads.issues
    pods = {p.name: p for p in workloads.topology.pods}
    assert set(pods) == {"httpbin.foo", "sleep.foo", "curl.foo", "fortio-deploy"}
    assert (pods["httpbin.foo"].runs, pods["httpbin.foo"].port, pods["httpbin.foo"].namespace) == (
        "httpbin",
        8080,
        "foo",
    )
    assert pods["sleep.foo"].runs == pods["curl.foo"].runs == "sleep"
    assert pods["fortio-deploy"].runs == "fortio"
    (httpbin,) = [s for s in workloads.topology.services if s.name == "httpbin"]
    assert (httpbin.namespace, httpbin.ports[0].number, httpbin.ports[0].target_port) == (
        "foo",
        8000,
        8080,
    )


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("registry.istio.io/release/examples-bookinfo-reviews-v2:1.20.3", Program("reviews", "v2")),
        ("docker.io/istio/examples-bookinfo-details-v2:1.16.2", Program("details", "v2")),
        (
            "localhost:5000/examples-bookinfo-productpage-v1@sha256:abc",
            Program("productpage", "v1"),
        ),
        ("docker.io/mccutchen/go-httpbin:v2.15.0", Program("httpbin")),
        ("docker.io/kennethreitz/httpbin", Program("httpbin")),
        ("curlimages/curl:8.16.0", Program("sleep")),
        ("fortio/fortio:latest_release", Program("fortio")),
        ("docker.io/istio/proxyv2:1.27.0", Program("gateway", gateway=True)),
    ],
)
def test_images_map_to_lab_programs_whatever_the_registry(image: str, expected: Program) -> None:
    assert program_of(image) == expected


def test_unknown_and_unsupported_images_say_why() -> None:
    assert isinstance(program_of("nginx:1.27"), UnknownImage)
    ratings_db = program_of("registry.istio.io/release/examples-bookinfo-ratings-v2:1.20.3")
    assert isinstance(ratings_db, UnknownImage) and "database" in ratings_db.reason
    assert program_of("ghcr.io/me/meshlab:2", ["reviews"]) == Program("reviews")
    assert isinstance(program_of("meshlab:latest", ["nginx"]), UnknownImage)


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


def test_replicas_give_numbered_pods_and_the_annotation_removes_the_sidecar() -> None:
    workloads = parse(
        """\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          ports: [{port: 80, name: http, targetPort: 9080}]
          selector: {app: web}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web-v1}
        spec:
          replicas: 2
          selector: {matchLabels: {app: web}}
          template:
            metadata:
              labels: {app: web, version: v1}
              annotations: {sidecar.istio.io/inject: "false"}
            spec:
              containers:
              - name: web
                image: meshlab:latest
                args: [details]
        """
    )
    assert workloads.ok, workloads.issues
    assert [(p.name, p.proxy, p.port, p.service) for p in workloads.topology.pods] == [
        ("web-v1-1", "none", 9080, "web"),
        ("web-v1-2", "none", 9080, "web"),
    ]


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v9}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata:
      labels: {app: reviews, version: v9}
    spec:
      containers:
      - name: reviews
        image: IMAGE
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            DEPLOYMENT.replace("IMAGE", "nginx:1.27"),
            "Error [MSH0006] (Deployment default/reviews-v9 bad.yaml:12) "
            "spec.template.spec.containers[0].image: image 'nginx:1.27' is not one the lab can run",
        ),
        (
            DEPLOYMENT.replace("IMAGE", "meshlab")
            .replace("{app: reviews, version: v9}", "{version: v9}")
            .replace("{matchLabels: {app: reviews}}", "{matchLabels: {version: v9}}"),
            "Error [MSH0006] (Deployment default/reviews-v9 bad.yaml:8) "
            "spec.template.metadata.labels: the pod template has no app label",
        ),
        (
            DEPLOYMENT.replace("IMAGE", "meshlab\n        args: [reviews]")
            + "---\napiVersion: v1\nkind: Service\nmetadata: {name: ratings}\nspec:\n"
            "  ports: [{port: 9080, name: http}]\n  selector: {app: ratings}\n",
            "Error [MSH0006] (Service default/ratings bad.yaml:20) spec.selector: selector "
            "{'app': 'ratings'} matches no pod template in namespace default",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n"
            "  - {port: 80, name: http}\n  - {port: 81, name: http}\n",
            "Error [MSH0006] (Service default/web bad.yaml:7) spec.ports[1].name: port name "
            "'http' is used twice",
        ),
        (
            DEPLOYMENT.replace("IMAGE", "meshlab\n        args: [reviews]").replace(
                "    spec:\n", "    spec:\n      serviceAccountName: nobody\n"
            ),
            "Error [MSH0006] (Deployment default/reviews-v9 bad.yaml:10) "
            "spec.template.spec.serviceAccountName: service account 'nobody' does not exist",
        ),
        (
            DEPLOYMENT.replace("IMAGE", "meshlab\n        args: [reviews]").replace(
                "{matchLabels: {app: reviews}}", "{matchLabels: {app: ratings}}"
            ),
            "Error [MSH0006] (Deployment default/reviews-v9 bad.yaml:5) "
            "spec.selector.matchLabels: selector {'app': 'ratings'} does not match",
        ),
        (
            "kind: Service\napiVersion: v1\nmetadata: {name: x}\nspec: [\n",
            "Error [MSH0001] (bad.yaml:5)",
        ),
    ],
    ids=[
        "unknown-image",
        "no-app-label",
        "selector-matches-nothing",
        "duplicate-port-name",
        "unknown-service-account",
        "selector-not-template",
        "yaml-syntax",
    ],
)
def test_a_planted_bad_manifest_gets_a_clear_error_with_file_and_line(
    text: str, expected: str
) -> None:
    found = errors(text)
    assert any(f.startswith(expected) for f in found), found


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
