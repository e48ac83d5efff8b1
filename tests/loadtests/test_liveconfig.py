"""The live config Locust's Versions view marks (loadtests.liveconfig), from a mesh directory
written by the test."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.liveconfig import UNKNOWN, LiveConfig, names_host, read_live_config

T0 = 1_000_000.0


def test_names_host_only_when_a_gateway_route_names_it() -> None:
    def vs(hosts, gateways=("bookinfo-gateway",)):
        return {
            "kind": "VirtualService",
            "spec": {"hosts": list(hosts), "gateways": list(gateways)},
        }

    assert names_host([vs(["bookinfo.local"]), vs(["test.bookinfo.local"])], "test.bookinfo.local")
    assert not names_host([vs(["*"])], "test.bookinfo.local")  # the baseline, a canary
    assert not names_host([vs(["test.bookinfo.local"], ())], "test.bookinfo.local")  # mesh only


def write_mesh(root: Path, applied: int, published: int, resources: list) -> None:
    for sub in ("status", "snapshot", "registry", "config"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "status" / "istio-ingressgateway.json").write_text(
        json.dumps(
            {"pod": "istio-ingressgateway", "role": "gateway", "version": applied, "heartbeat": T0}
        )  # fmt: skip
    )
    (root / "status" / "reviews-v1.json").write_text(  # a sidecar: not the gateway's version
        json.dumps({"pod": "reviews-v1", "role": "sidecar", "version": 99, "heartbeat": T0})
    )
    (root / "snapshot" / "snapshot.json").write_text(json.dumps(
        {"version": published, "hash": "h", "generated_at": T0, "resources": resources,
         "endpoints": []}))  # fmt: skip


def test_live_config_follows_the_gateways_applied_version(tmp_path: Path) -> None:
    assert read_live_config(tmp_path / "none", "test.bookinfo.local") is UNKNOWN
    blue_green = [{"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                   "metadata": {"name": "t"},
                   "spec": {"hosts": ["test.bookinfo.local"], "gateways": ["g"], "http": []}}]  # fmt: skip
    write_mesh(tmp_path, 5, 5, blue_green)
    config = read_live_config(tmp_path, "test.bookinfo.local")
    assert config == LiveConfig(5, True)
    write_mesh(tmp_path, 5, 6, [])  # published, not yet applied by the gateway: still v5
    assert read_live_config(tmp_path, "test.bookinfo.local", config) == LiveConfig(5, True)
    write_mesh(tmp_path, 6, 6, [])
    assert read_live_config(tmp_path, "test.bookinfo.local", config) == LiveConfig(6, False)
    (tmp_path / "status" / "istio-ingressgateway.json").write_text("{half")
    assert read_live_config(tmp_path, "test.bookinfo.local", config) is UNKNOWN
