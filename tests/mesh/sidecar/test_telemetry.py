"""Metrics exposition and the access log format."""

from __future__ import annotations

import io
import re

from mesh.sidecar.telemetry import Telemetry
from tests.helpers import make_downstream


def finished_exchange(status=200, flags="", labels=("reviews-v2", "reviews", "v2")):  # type: ignore[no-untyped-def]
    pending = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(
        b"GET http://reviews:9080/r HTTP/1.1\r\nuser-agent: t\r\nx-request-id: r1\r\n\r\n"
    )
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


def test_access_log_lines_are_formatted_in_batches_with_the_start_time():
    import calendar
    import time

    from mesh.sidecar.telemetry import LOG_BATCH

    log = io.StringIO()
    t = Telemetry("p", "p", log)
    ex = finished_exchange()
    ex.start = time.monotonic() - 2.0  # the line carries the request's start, not its end
    t.record(ex, "source")
    assert len(t.log_pending) == 1 and not t.log_buf  # a record, no text yet
    for _ in range(LOG_BATCH - 1):
        t.record(finished_exchange(), "source")
    assert not t.log_pending and len(t.log_buf) == LOG_BATCH  # the batch was formatted
    t.flush_log()
    lines = log.getvalue().splitlines()
    assert len(lines) == LOG_BATCH and all(ln.endswith(" source") for ln in lines)
    stamp = re.match(r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z\]", lines[0])
    assert stamp is not None
    started = calendar.timegm(time.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S"))
    assert abs(time.time() - 2.0 - started - int(stamp.group(2)) / 1000) < 1.0
    assert " 2000 " in lines[0] or " 1999 " in lines[0] or " 2001 " in lines[0]  # duration ms


def test_access_log_is_handed_to_the_writer_between_flushes_at_high_rates():
    from mesh.sidecar.telemetry import LOG_HANDOVER

    class Writer:
        def __init__(self) -> None:
            self.jobs: list = []

        def submit(self, fn, *args):  # type: ignore[no-untyped-def]
            self.jobs.append((fn, args))

    log = io.StringIO()
    t = Telemetry("p", "p", log)
    t.writer = Writer()  # type: ignore[assignment]
    ex = finished_exchange()
    for _ in range(LOG_HANDOVER):
        t.record(ex, "source")
    assert len(t.writer.jobs) == 1 and not t.log_buf  # type: ignore[union-attr]
    fn, args = t.writer.jobs[0]  # type: ignore[union-attr]
    fn(*args)
    assert len(log.getvalue().splitlines()) == LOG_HANDOVER
