"""Through a real sidecar: a ServiceEntry host reaches the lab process its endpoints name,
an entry without endpoints gets Envoy's 503 UH, and a VirtualService applied with
--allow-dangling (a subset no DestinationRule defines) gets Istio's 503 NC."""

from __future__ import annotations

import pytest

from mesh.sidecar.testing import SidecarProcess, Upstream, http_request, write_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def service_entry(name: str, host: str, endpoints: list[dict]) -> dict:
    spec = {"hosts": [host], "location": "MESH_EXTERNAL", "resolution": "STATIC" if endpoints else "DNS",
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}], "endpoints": endpoints}  # fmt: skip
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


DANGLING = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "ratings",
                         "annotations": {"meshlab.io/allow-dangling": "true"}},
            "spec": {"hosts": ["ratings"],
                     "http": [{"route": [{"destination": {"host": "ratings", "subset": "v9"}}]}]}}  # fmt: skip


def test_external_hosts_and_a_dangling_subset(tmp_path):
    with Upstream(name="httpbin-ext") as external:
        resources = [
            service_entry("httpbin", "httpbin.example.com",
                          [{"address": "127.0.0.1", "ports": {"http": external.port}}]),
            service_entry("googleapis", "www.googleapis.com", []),
            DANGLING,
        ]  # fmt: skip
        write_snapshot(tmp_path, 1, resources, [])
        proxy = SidecarProcess(tmp_path, pod="sleep-v1", labels={"app": "sleep", "version": "v1"})
        proxy.start()
        try:
            proxy.wait_version(1)
            port = proxy.outbound_port
            r = http_request("127.0.0.1", port, "GET", "http://httpbin.example.com/get", {})
            assert r.status == 200 and r.body == b"httpbin-ext GET /get"
            r = http_request("127.0.0.1", port, "GET", "http://www.googleapis.com/", {})
            assert r.status == 503 and r.body == b"no healthy upstream"
            r = http_request("127.0.0.1", port, "GET", "http://ratings:9080/ratings/0", {})
            assert r.status == 503
            stats = proxy.admin("/stats/prometheus")[1].decode()
            assert 'response_flags="NC"' in stats and 'response_flags="UH"' in stats
        finally:
            proxy.stop()
