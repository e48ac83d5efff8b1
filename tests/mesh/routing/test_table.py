"""Compiling a published snapshot: the service catalog it carries, and what cannot compile."""

from __future__ import annotations

import random

import pytest

from mesh.config.issues import ConfigError
from mesh.routing import Forward, LocalReply, ProxyIdentity, RequestView, compile_snapshot, decide
from mesh.snapshot import Snapshot
from mesh.topology import Service
from tests.helpers import pods

SIDECAR = ProxyIdentity("p", {"app": "productpage"})


def vs(name: str, destination: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"hosts": [name], "http": [{"route": [{"destination": destination}]}]},
    }


def decision(snapshot: Snapshot, host: str) -> Forward | LocalReply:
    table = compile_snapshot(snapshot, SIDECAR)
    return decide(table, RequestView(host=host), random.Random(1))


def test_a_catalogued_service_without_ready_pods_still_has_its_default_route() -> None:
    snapshot = Snapshot(1, (), tuple(pods("reviews:v1")), services=(Service("details"),))
    details = decision(snapshot, "details")
    assert isinstance(details, Forward) and details.cluster.endpoints == ()
    assert isinstance(decision(snapshot, "nowhere"), LocalReply)


def test_a_destination_without_host_cannot_compile() -> None:
    snapshot = Snapshot(2, (vs("reviews", {}),), ())
    with pytest.raises(ConfigError, match="destination host is required"):
        compile_snapshot(snapshot, SIDECAR)


def test_resources_that_do_not_load_are_refused() -> None:
    snapshot = Snapshot(3, (vs("reviews", {"host": "reviews", "subzet": "v1"}),), ())
    with pytest.raises(ConfigError, match="subzet"):
        compile_snapshot(snapshot, SIDECAR)
