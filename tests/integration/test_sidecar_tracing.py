"""Traces through real sidecars: a CLIENT span at the caller's proxy and a SERVER span sharing
its id at the callee's, reported to a Zipkin collector off the request path; a collector that
is down or hangs costs spans, never a request."""

from __future__ import annotations

import json
import socket
import time

import pytest

from mesh.sidecar.testing import (
    SidecarProcess,
    Upstream,
    endpoint,
    http_request,
    ok,
    wait_for,
    write_snapshot,
)
from mesh.telemetry.zipkin import parse_spans

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def collector_spans(collector: Upstream) -> list:  # type: ignore[type-arg]
    spans = []
    for req in list(collector.requests):
        if req.method == "POST" and req.target == "/api/v2/spans":
            spans += parse_spans(json.loads(req.body))
    return spans


def two_hops(tmp_path, monkeypatch, zipkin: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ZIPKIN_ADDRESS", zipkin)
    app = Upstream(name="ratings-app")
    b = SidecarProcess(tmp_path, pod="ratings-v1", labels={"app": "ratings", "version": "v1"},
                       app_port=app.port)  # fmt: skip
    a = SidecarProcess(tmp_path, pod="reviews-v2", labels={"app": "reviews", "version": "v2"})
    write_snapshot(
        tmp_path, 1, [], [endpoint("ratings-v1", "ratings", b.inbound_port, version="v1")]
    )
    a.start()
    b.start()
    a.wait_version(1)
    return app, a, b


def test_client_and_server_spans_join_in_one_trace(tmp_path, monkeypatch):
    collector = Upstream(lambda req: ok(b"", 202), name="zipkin")
    app, a, b = two_hops(tmp_path, monkeypatch, f"127.0.0.1:{collector.port}")
    try:
        r = http_request("127.0.0.1", a.outbound_port, "GET", "http://ratings:9080/ratings/0",
                         {"x-request-id": "trace-me"})  # fmt: skip
        assert r.status == 200
        seen = app.requests[-1].headers
        trace_id, span_id = seen["x-b3-traceid"], seen["x-b3-spanid"]
        assert seen["x-b3-sampled"] == "1"  # sampling 100 % by default

        def both() -> list:  # type: ignore[type-arg]
            spans = collector_spans(collector)
            return spans if len(spans) >= 2 else []

        spans = wait_for(both, 10, "two spans at the collector")
        by_kind = {s.kind: s for s in spans}
        client, server = by_kind["CLIENT"], by_kind["SERVER"]
        assert client.trace_id == server.trace_id == trace_id
        assert client.id == server.id == span_id and server.shared
        assert client.local_endpoint.service_name == "reviews.default"
        assert server.local_endpoint.service_name == "ratings.default"
        assert client.name == "ratings.default.svc.cluster.local:9080/*"
        for span in (client, server):
            assert span.tags["guid:x-request-id"] == "trace-me"
            assert span.tags["http.status_code"] == "200"
            assert span.tags["component"] == "proxy"
        assert client.tags["upstream_cluster"].startswith("outbound|9080||ratings")
        assert client.duration >= server.duration  # the client span encloses the server's
        stats = a.admin("/stats/prometheus")[1].decode()
        assert "mesh_tracing_zipkin_spans_sent 1" in stats
    finally:
        a.stop()
        b.stop()
        app.close()
        collector.close()


@pytest.mark.parametrize("collector_state", ["down", "hanging"])
def test_a_collector_down_or_hanging_never_delays_or_fails_a_request(
    tmp_path, monkeypatch, collector_state
):
    if collector_state == "down":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there
        hanging = None
    else:
        hanging = Upstream(lambda req: "hang", name="zipkin")
        port = hanging.port
    app, a, b = two_hops(tmp_path, monkeypatch, f"127.0.0.1:{port}")
    try:
        worst = 0.0
        for _ in range(200):
            t0 = time.monotonic()
            r = http_request("127.0.0.1", a.outbound_port, "GET", "http://ratings:9080/r")
            worst = max(worst, time.monotonic() - t0)
            assert r.status == 200
        # Generous: a loaded 2-core machine; a blocking send would cost the 5 s timeout.
        assert worst < 1.0, worst
        if collector_state == "down":

            def failed() -> bool:
                stats = a.admin("/stats/prometheus")[1].decode()
                return "mesh_tracing_zipkin_reports_failed 0" not in stats

            wait_for(failed, 10, "a failed report counted")
    finally:
        a.stop()
        b.stop()
        app.close()
        if hanging is not None:
            hanging.close()
