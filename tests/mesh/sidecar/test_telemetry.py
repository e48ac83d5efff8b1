"""Metrics exposition and the access log format."""

from __future__ import annotations

import io
import re

from mesh.sidecar.telemetry import PEER_CACHE, Telemetry
from mesh.snapshot import Endpoint
from mesh.telemetry.istio import (
    UNKNOWN_PEER,
    Peer,
    Service,
    decode_peer,
    encode_peer,
    service_of_host,
)
from tests.helpers import make_downstream

REVIEWS_V2 = Endpoint(
    "reviews-v2-1", "reviews", "10.0.0.1", 9080, {"app": "reviews", "version": "v2"},
    workload="reviews-v2",
)  # fmt: skip
HOST = "reviews.default.svc.cluster.local"


def productpage() -> Telemetry:
    return Telemetry(
        "productpage-v1-1",
        "productpage-v1",
        None,
        peer=Peer.of_pod("productpage-v1", "default", {"app": "productpage", "version": "v1"}),
        service=Service.of("productpage", "default"),
        principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
    )


def finished_exchange(status=200, flags="", labels=None):  # type: ignore[no-untyped-def]
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


def series(text: str, name: str) -> dict[str, str]:
    """The labels of the one sample of ``name`` in ``text``."""
    lines = [ln for ln in text.splitlines() if ln.startswith(name + "{")]
    assert len(lines) == 1, lines
    return dict(re.findall(r'(\w+)="([^"]*)"', lines[0]))


def test_source_reporter_labels_are_istios_from_plain_values():
    t = productpage()
    ex = finished_exchange(labels=t.source_prefix(HOST, REVIEWS_V2))
    ex.bytes_in, ex.bytes_out = 3, 120
    t.record(ex, "source")
    t.record(finished_exchange(labels=t.source_prefix(HOST, REVIEWS_V2)), "source")
    text = t.render()
    assert series(text, "istio_requests_total") == {
        "reporter": "source",
        "source_workload": "productpage-v1",
        "source_workload_namespace": "default",
        "source_principal": "unknown",
        "source_app": "productpage",
        "source_version": "v1",
        "source_cluster": "Kubernetes",
        "source_canonical_service": "productpage",
        "source_canonical_revision": "v1",
        "destination_workload": "reviews-v2",
        "destination_workload_namespace": "default",
        "destination_principal": "unknown",
        "destination_app": "reviews",
        "destination_version": "v2",
        "destination_cluster": "Kubernetes",
        "destination_canonical_service": "reviews",
        "destination_canonical_revision": "v2",
        "destination_service": HOST,
        "destination_service_name": "reviews",
        "destination_service_namespace": "default",
        "request_protocol": "http",
        "response_code": "200",
        "grpc_response_status": "",
        "response_flags": "-",
        "connection_security_policy": "unknown",
    }
    assert text.count("istio_requests_total{") == 1 and "istio_requests_total{" in text
    assert re.search(r"istio_requests_total\{.*\} 2$", text, re.M)
    assert "# TYPE istio_request_duration_milliseconds histogram" in text
    assert re.search(r'istio_request_duration_milliseconds_bucket\{.*le="0.5"\} 2', text)
    assert re.search(r'istio_response_bytes_bucket\{.*le="250"\} 2', text)
    assert re.search(r"istio_response_bytes_sum\{.*\} 120$", text, re.M)
    assert re.search(r"istio_request_bytes_sum\{.*\} 3$", text, re.M)
    assert "mesh_config_version" in text


def test_no_endpoint_answered_leaves_the_destination_workload_unknown():
    t = productpage()
    t.record(finished_exchange(503, "FI", t.source_prefix(HOST)), "source")
    labels = series(t.render(), "istio_requests_total")
    assert labels["destination_workload"] == "unknown"
    assert labels["destination_version"] == "unknown"
    assert labels["destination_service_name"] == "reviews"
    assert (labels["response_code"], labels["response_flags"]) == ("503", "FI")


def test_destination_reporter_reads_the_callers_metadata_and_the_connection():
    caller = encode_peer(
        "productpage-v1", "default", {"app": "productpage", "version": "v1"},
        "bookinfo-productpage",
    )  # fmt: skip
    t = Telemetry(
        "reviews-v2-1", "reviews-v2", None,
        peer=Peer.of_pod("reviews-v2", "default", {"app": "reviews", "version": "v2"}),
        service=Service.of("reviews", "default"),
        principal="spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
    )  # fmt: skip
    assert t.inbound_prefix(caller, False) is t.inbound_prefix(caller, False)  # cached
    t.record(finished_exchange(labels=t.inbound_prefix(caller, False)), "destination")
    labels = series(t.render(), "istio_requests_total")
    assert labels["reporter"] == "destination"
    assert (labels["source_workload"], labels["source_app"], labels["source_version"]) == (
        "productpage-v1", "productpage", "v1",
    )  # fmt: skip
    assert labels["destination_workload"] == "reviews-v2"
    assert labels["source_principal"] == labels["destination_principal"] == "unknown"
    assert labels["connection_security_policy"] == "none"

    t.metrics.clear()
    ex = finished_exchange(labels=t.inbound_prefix(caller, True))
    ex.mtls = True
    t.record(ex, "destination")
    labels = series(t.render(), "istio_requests_total")
    assert labels["connection_security_policy"] == "mutual_tls"
    assert labels["source_principal"] == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    assert (
        labels["destination_principal"] == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    )


def test_a_caller_outside_the_mesh_or_a_forged_header_is_unknown():
    t = productpage()
    huge = encode_peer("x" * 5000, "default", {}, "sa")  # over MAX_PEER_METADATA: not decoded
    for value in (None, "", "not base64!", "aGVsbG8=", "W10=", huge):  # "hello", "[]"
        assert decode_peer(value) == UNKNOWN_PEER
        prefix = t.inbound_prefix(value, False)
        assert prefix[1] == "unknown" and prefix[0] == "destination"
    for n in range(PEER_CACHE + 10):  # a flood of distinct values: the cache stays bounded
        t.inbound_prefix(f"x{n}", False)
    assert len(t._callers) <= PEER_CACHE


def test_service_of_host():
    assert service_of_host(HOST) == Service(HOST, "reviews", "default")
    assert service_of_host("api.example.com") == Service("api.example.com", "api.example.com")


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
