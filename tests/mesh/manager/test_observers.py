"""Scrape targets (Prometheus file SD) and the config timeline the manager writes."""

from __future__ import annotations

import io
import json

from mesh.manager.observers import (
    ConfigHistory,
    diff_snapshots,
    iso_time,
    resource_digest,
    scrape_groups,
)
from mesh.manager.service import Manager
from mesh.meshdir import MeshDir, RegistryRecord
from mesh.snapshot import Endpoint, Snapshot
from tests.helpers import COURSE

DR_YAML = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"""


def record(pod, *, heartbeat=1000.0, role="sidecar", admin=15000, labels=None):  # type: ignore[no-untyped-def]
    return RegistryRecord(
        pod=pod,
        service="reviews",
        address=pod,
        port=9080 if role == "sidecar" else 0,
        labels=labels if labels is not None else {"app": "reviews", "version": "v1"},
        ready=True,
        heartbeat=heartbeat,
        role=role,
        admin_address=pod,
        admin_port=admin,
    )


def test_scrape_groups_are_fresh_proxies_with_an_admin_port():
    groups = scrape_groups(
        [
            record("reviews-v1"),
            record("istio-ingressgateway", role="gateway", labels={"app": "istio-ingressgateway"}),
            record("stale", heartbeat=900.0),
            record("no-admin", admin=0),
        ],
        now=1005.0,
    )
    assert groups == [
        {
            "targets": ["istio-ingressgateway:15000"],
            "labels": {
                "pod": "istio-ingressgateway",
                "role": "gateway",
                "app": "istio-ingressgateway",
            },
        },
        {
            "targets": ["reviews-v1:15000"],
            "labels": {"pod": "reviews-v1", "role": "sidecar", "app": "reviews", "version": "v1"},
        },
    ]


def snap(version, resources, pods, at=1_700_000_000.25):  # type: ignore[no-untyped-def]
    endpoints = tuple(Endpoint(p, "reviews", "127.0.0.1", 9000 + i) for i, p in enumerate(pods))
    return Snapshot(version, tuple(resources), endpoints, generated_at=at)


VS_RAW = {
    "kind": "VirtualService",
    "metadata": {"name": "bookinfo", "namespace": "default"},
    "spec": {"hosts": ["x"]},
}
DR_RAW = {"kind": "DestinationRule", "metadata": {"name": "reviews"}, "spec": {"host": "reviews"}}


def test_diff_names_created_configured_deleted_and_endpoint_moves():
    first = diff_snapshots(None, snap(1, [VS_RAW], ["a"]))
    assert first["changed"] == ["VirtualService default/bookinfo"]
    assert first["time"] == "2023-11-14T22:13:20.250Z"
    assert first["endpoints"] == {"added": ["a"], "removed": []}
    changed_vs = {**VS_RAW, "spec": {"hosts": ["y"]}}
    entry = diff_snapshots(snap(1, [VS_RAW], ["a"]), snap(2, [changed_vs, DR_RAW], ["b"]))
    assert entry["version"] == 2
    assert entry["changed"] == [
        "DestinationRule default/reviews",
        "VirtualService default/bookinfo",
    ]
    assert entry["resources"]["configured"] == ["VirtualService default/bookinfo"]
    assert entry["resources"]["created"] == ["DestinationRule default/reviews"]
    assert entry["endpoints"] == {"added": ["b"], "removed": ["a"]}
    assert entry["digests"]["VirtualService default/bookinfo"] == resource_digest(changed_vs)
    gone = diff_snapshots(snap(2, [DR_RAW], []), snap(3, [], []))
    assert gone["resources"]["deleted"] == ["DestinationRule default/reviews"]
    assert iso_time(1.9996) == "1970-01-01T00:00:02.000Z"


def test_history_is_bounded_and_survives_a_restart(tmp_path):
    mesh = MeshDir(tmp_path).create()
    history = ConfigHistory(mesh, limit=3)
    previous = None
    for v in range(1, 6):
        current = snap(v, [{**VS_RAW, "spec": {"v": v}}], [])
        history.record(previous, current)
        previous = current
    assert history.versions == [3, 4, 5]
    again = ConfigHistory(mesh, limit=3)
    assert again.versions == [3, 4, 5]
    (mesh.config_history).write_text("garbage")
    assert ConfigHistory(mesh).versions == []  # unreadable: starts over, no crash


def test_the_manager_writes_both_files(tmp_path):
    mesh = MeshDir(tmp_path).create()
    pod = {
        "pod": "reviews-v1", "service": "reviews", "labels": {"app": "reviews", "version": "v1"},
        "address": "10.0.0.9", "port": 9080, "ready": True, "heartbeat": 1000.0, "ttl": 10.0,
        "admin_address": "10.0.0.9", "admin_port": 15000,
    }  # fmt: skip
    (mesh.registry / "reviews-v1.json").write_text(json.dumps(pod))
    m = Manager(mesh, topology=COURSE, clock=lambda: 1001.0, log=io.StringIO())
    m.evaluate()
    (mesh.config / "dr.yaml").write_text(DR_YAML)
    m.evaluate()
    targets = json.loads((mesh.scrape_targets).read_text())
    labels = {"pod": "reviews-v1", "role": "sidecar", "app": "reviews", "version": "v1"}
    assert targets == [{"targets": ["10.0.0.9:15000"], "labels": labels}]
    history = json.loads((mesh.config_history).read_text())
    assert [e["version"] for e in history] == [1, 2]
    assert history[0]["endpoints"]["added"] == ["reviews-v1"]
    assert history[1]["changed"] == ["DestinationRule default/reviews"]
