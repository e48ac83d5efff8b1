"""Kubernetes manifests as the lab's topology: Istio's own samples load unchanged, the lab's
profiles are what they say, and a bad manifest is refused with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mesh.lab.workloads import (
    WORKLOADS_DIR,
    Entry,
    read_workloads,
)
from mesh.workloads.manifests import ManifestFile, parse_workloads
from tests.helpers import DEPLOYMENT, ISTIO_BOOKINFO

ISTIO = Path(__file__).resolve().parents[2] / "fixtures" / "istio"


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
