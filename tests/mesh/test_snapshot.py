"""The snapshot file: JSON round trip with endpoints and the service catalog; bad files."""

from __future__ import annotations

import pytest

from mesh.snapshot import Endpoint, Snapshot, SnapshotError
from mesh.topology import Service, ServicePort


def test_round_trip_keeps_endpoints_and_the_service_catalog() -> None:
    endpoints = (Endpoint("reviews-v1", "reviews", "10.0.0.2", 9080, {"version": "v1"}),)
    services = (Service("reviews"), Service("httpbin", "foo", (ServicePort(8000, "http"),)))
    resources = ({"kind": "VirtualService", "metadata": {"name": "r"}},)
    digest = Snapshot.content_hash(resources, endpoints, services)
    snapshot = Snapshot(7, resources, endpoints, digest, 1.5, services)
    again = Snapshot.from_json(snapshot.to_json())
    assert again == snapshot
    assert digest != Snapshot.content_hash(resources, endpoints)


def test_an_endpoint_is_a_pod_of_its_service() -> None:
    pod = Endpoint("a-1", "a", "127.0.0.1", 1, {"app": "x", "version": "v2"}).as_pod()
    assert (pod.name, pod.service, pod.version) == ("a-1", "a", "v2")


def test_a_snapshot_without_a_catalog_loads_with_none() -> None:
    assert Snapshot.from_json('{"version": 1, "resources": [], "endpoints": []}').services == ()


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "resources": [], "endpoints": [], "services": {}}',
        '{"version": 1, "resources": [], "endpoints": [], "services": [{"name": "a"}]}',
        '{"version": 1, "resources": [], "endpoints": [{"pod": "a"}]}',
        "[]",
        "{",
    ],
)
def test_bad_snapshots_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(SnapshotError):
        Snapshot.from_json(text)


def test_endpoint_security_metadata_round_trips():
    from mesh.meshdir import RegistryRecord

    e = Endpoint("h-1", "httpbin", "127.0.0.1", 8000, {"app": "httpbin"}, namespace="foo",
                 service_account="httpbin", proxy="none")  # fmt: skip
    assert Endpoint.from_json(e.to_json()) == e
    pod = e.as_pod()
    assert (pod.service_account, pod.proxy, pod.port) == ("httpbin", "none", 8000)
    plain = Endpoint("a-1", "a", "127.0.0.1", 1)
    assert "proxy" not in plain.to_json() and "service_account" not in plain.to_json()
    assert plain.as_pod().proxy == "sidecar"
    record = RegistryRecord("l-1", "legacy", "127.0.0.1", 9080, role="workload",
                            namespace="legacy", service_account="sleep")  # fmt: skip
    assert record.endpoint().proxy == "none" and record.endpoint().service_account == "sleep"
    assert RegistryRecord("s-1", "s", "127.0.0.1", 9080).endpoint().proxy == "sidecar"
