"""Compiling a published snapshot: its normal-form resources, the service catalog it
carries, and what cannot compile."""

from __future__ import annotations

import random

import pytest

from mesh.config.issues import ConfigError
from mesh.config.loader import normal_documents
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
    snapshot = Snapshot(2, normal_documents([vs("reviews", {})]), ())
    with pytest.raises(ConfigError, match="destination host is required"):
        compile_snapshot(snapshot, SIDECAR)


def test_documents_not_in_normal_form_are_refused() -> None:
    raw = vs("reviews", {"host": "reviews", "subset": "v1"})
    raw["spec"]["http"][0]["timeout"] = "2s"  # Istio's spelling, not the normal form's
    raw["spec"]["http"][0]["corsPolicy"] = {}
    snapshot = Snapshot(3, (raw,), ())
    with pytest.raises(ConfigError, match="not in normal form"):
        compile_snapshot(snapshot, SIDECAR)


def test_the_normal_form_compiles_to_the_same_routes() -> None:
    raw = vs("reviews", {"host": "reviews", "subset": "v1"})
    raw["spec"]["http"][0]["timeout"] = "2.5s"
    (doc,) = normal_documents([raw])
    assert doc["spec"]["http"][0]["timeout"] == 2.5
    table = compile_snapshot(Snapshot(4, (doc,), tuple(pods("reviews:v1"))), SIDECAR)
    (rule,) = table.mesh.resolve("reviews").rules
    assert rule.route.timeout == 2.5 and rule.targets[0].cluster.subset == "v1"
