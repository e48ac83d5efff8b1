"""Metrics exposition and the access log format."""

from __future__ import annotations

import io
import re

from mesh.sidecar.telemetry import Telemetry

from .test_downstream import make


def finished_exchange(status=200, flags="", labels=("reviews-v2", "reviews", "v2")):  # type: ignore[no-untyped-def]
    pending = []
    conn, _, _, _ = make(lambda ex: pending.append(ex))
    conn.data_received(b"GET http://reviews:9080/r HTTP/1.1\r\nuser-agent: t\r\nx-request-id: r1\r\n\r\n")
    ex = pending[0]
    ex.labels = labels
    ex.status = status
    ex.flags = flags
    ex.upstream_host = "10.0.0.1:9080"
    ex.cluster_name = "outbound|9080|v2|reviews"
    return ex


def test_counters_histogram_and_text_exposition():
    t = Telemetry("productpage-v1", "productpage-v1", None)
    t.record(finished_exchange(), "source")
    t.record(finished_exchange(), "source")
    t.record(finished_exchange(503, "UO", ("unknown", "reviews", "unknown")), "source")
    text = t.render()
    assert (
        'mesh_requests_total{reporter="source",source_workload="productpage-v1",'
        'destination_workload="reviews-v2",destination_service="reviews",'
        'destination_version="v2",response_code="200",response_flags="-"} 2'
    ) in text
    assert 'response_code="503",response_flags="UO"} 1' in text
    assert re.search(r'mesh_request_duration_milliseconds_bucket\{.*le="0.5"\} 2', text)
    assert re.search(r'mesh_request_duration_milliseconds_count\{.*response_code="200".*\} 2', text)
    assert "# TYPE mesh_request_duration_milliseconds histogram" in text
    assert "mesh_config_version" in text


def test_access_log_is_buffered_then_flushed_envoy_style():
    log = io.StringIO()
    t = Telemetry("p", "p", log)
    t.record(finished_exchange(503, "UF,URX"), "source")
    assert log.getvalue() == ""  # nothing written on the request path
    t.flush_log()
    line = log.getvalue()
    assert '"GET http://reviews:9080/r HTTP/1.1" 503 UF,URX 0 0 ' in line
    assert '"t" "r1"' in line and '"10.0.0.1:9080" outbound|9080|v2|reviews source' in line
