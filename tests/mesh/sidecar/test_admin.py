"""The admin port's Envoy-shaped ``/clusters`` text, and the status record's ejections."""

from __future__ import annotations

from mesh.meshdir import ProxyStatus
from mesh.sidecar.admin import clusters_text


def test_clusters_text_flags_an_ejected_host_as_envoy_does():
    described = [
        {
            "name": "outbound|9080|v2|details.default.svc.cluster.local",
            "inflight": 0,
            "ejections_total": 1,
            "endpoints": [
                {"pod": "details-v2", "address": "10.0.0.5:9080", "ejected": False},
                {"pod": "details-v2-failing", "address": "10.0.0.6:9080", "ejected": True,
                 "outlier": {"ejected_for_seconds": 29.5}},
            ],
        }
    ]  # fmt: skip
    lines = clusters_text(described)
    name = "outbound|9080|v2|details.default.svc.cluster.local"
    assert f"{name}::10.0.0.5:9080::health_flags::healthy" in lines
    assert f"{name}::10.0.0.6:9080::health_flags::/failed_outlier_check" in lines
    assert f"{name}::10.0.0.6:9080::hostname::details-v2-failing" in lines
    assert f"{name}::10.0.0.6:9080::ejected_for_seconds::29.5" in lines


def test_status_record_ejections_round_trip_and_expire():
    status = ProxyStatus(
        "productpage-v1", ejected=({"pod": "details-v2-failing", "until": 130.0}, {"x": 1})
    )
    again = ProxyStatus.from_json(status.to_json())
    assert again.ejections(100.0) == [("details-v2-failing", 30.0)]
    assert again.ejections(131.0) == []
    assert ProxyStatus.from_json({"pod": "p", "ejected": "nonsense"}).ejected == ()
    assert "ejected" not in ProxyStatus("p").to_json()
