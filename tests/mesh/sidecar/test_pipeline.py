"""Stages 1-2 of the pipeline: the request as the router sees it, the per-request timeout;
what a pod without a sidecar (kube-proxy's part) adds to a request: nothing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from mesh.sidecar import pipeline
from mesh.sidecar.flight import ANSWERED
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.pipeline import request_view, split_authority, start_routed
from mesh.sidecar.runtime import Runtime
from mesh.sidecar.server import Options, Sidecar
from mesh.sidecar.telemetry import Telemetry
from mesh.sidecar.tracing import Tracer
from mesh.telemetry import zipkin
from tests.helpers import parsed_exchange, sidecar_runtime, svc_endpoint


def test_request_view_absolute_form_and_host_header():
    ex = parsed_exchange(b"GET http://reviews:9080/r/1?x=2 HTTP/1.1\r\nhost: other\r\n\r\n")
    view = request_view(ex, None, absolute=True)
    assert (view.host, view.port, view.path) == ("reviews", 9080, "/r/1?x=2")
    assert ex.authority == "reviews:9080"
    ex = parsed_exchange(b"GET /p HTTP/1.1\r\nhost: bookinfo.local:8080\r\n\r\n")
    view = request_view(ex, 8080, absolute=False)
    assert (view.host, view.port, view.path) == ("bookinfo.local", 8080, "/p")
    assert split_authority("a:b", 80) == ("a:b", 80)
    assert split_authority("[::1]:81", 80) == ("[::1]", 81)


def test_per_request_timeout_header():
    from mesh.sidecar.pipeline import route_timeout

    assert route_timeout(2.0, {}) == 2.0
    assert route_timeout(2.0, {"x-envoy-upstream-rq-timeout-ms": "250"}) == 0.25
    assert route_timeout(2.0, {"x-envoy-upstream-rq-timeout-ms": "0"}) is None
    assert route_timeout(None, {"x-envoy-upstream-rq-timeout-ms": "x"}) is None


# --- a pod without a sidecar: the lab's proxy as kube-proxy, telemetry off ------------------

APP_REQUEST = (
    b"GET http://svc/headers HTTP/1.1\r\nhost: svc\r\n"
    b"x-b3-traceid: 463ac35c9f6413ad\r\nx-b3-spanid: a2fb4a1d1a96d312\r\nx-b3-sampled: 1\r\n"
    b"x-envoy-peer-metadata-id: app-made\r\n\r\n"
)


def sent_upstream(monkeypatch: pytest.MonkeyPatch, rt: Runtime) -> tuple[Exchange, list[bytes]]:
    """What ``start_routed`` hands the flight for the app's request: the exchange (its
    headers go upstream as they are now) and the header lines the proxy adds."""
    seen: list[tuple[Exchange, list[bytes]]] = []

    class Recorder:
        def __init__(self, rt: Runtime, ex: Exchange, state, view, fwd, extra) -> None:  # type: ignore[no-untyped-def]
            seen.append((ex, list(extra)))
            self.timeout = None

        def pre_checks(self) -> object:
            return ANSWERED

    monkeypatch.setattr(pipeline, "Flight", Recorder)
    start_routed(rt, parsed_exchange(APP_REQUEST), None, False)
    (found,) = seen
    return found


def plain_sidecar(tmp_path: Path, loop: asyncio.AbstractEventLoop, plain: bool) -> Sidecar:
    options = Options(pod="sleep-1", mesh_dir=tmp_path, labels={"app": "sleep"},
                      namespace="legacy", plain=plain, outbound_port=15001, access_log="off")  # fmt: skip
    return Sidecar(options, loop)


def test_a_pod_without_sidecar_sends_no_peer_metadata_no_b3_of_its_own_and_reports_nothing(
    tmp_path: Path, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZIPKIN_ADDRESS", "127.0.0.1:9")
    mesh = plain_sidecar(tmp_path / "mesh", loop, plain=False)
    plain = plain_sidecar(tmp_path / "plain", loop, plain=True)
    try:
        # With a sidecar: metadata exchange, a tracer with a collector.
        assert mesh.runtime.peer_lines and mesh.tracer is not None and mesh.sender is not None
        assert mesh.telemetry.enabled
        # Without: none of it (Istio: no Envoy in the pod).
        assert plain.runtime.peer_lines == [] and plain.runtime.tracer is None
        assert plain.tracer is None and plain.sender is None and plain.telemetry.tracer is None
        assert not plain.telemetry.enabled and plain.runtime.kube_proxy
    finally:
        mesh.writer.close()
        plain.writer.close()

    rt = sidecar_runtime(loop, [], [svc_endpoint("a", 1)])
    rt.kube_proxy = True
    ex, extra = sent_upstream(monkeypatch, rt)
    assert extra == []  # no x-request-id, no metadata, no b3 of its own
    headers = dict(ex.headers)
    assert headers[b"x-b3-traceid"] == b"463ac35c9f6413ad"  # the app's context, untouched
    assert headers[b"x-b3-spanid"] == b"a2fb4a1d1a96d312"
    assert headers[b"x-envoy-peer-metadata-id"] == b"app-made"  # kube-proxy reads nothing

    # The telemetry of what it forwarded: no istio_* series.
    plain_telemetry = Telemetry("sleep-1", "sleep", None)
    plain_telemetry.enabled = False
    ex.status = 200
    plain_telemetry.record(ex, "source")
    assert "istio_requests_total{" not in plain_telemetry.render()


def test_a_sidecar_replaces_the_apps_b3_and_metadata_headers(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contrast: the same request through a sidecar's outbound listener."""
    rt = sidecar_runtime(loop, [], [svc_endpoint("a", 1)])
    rt.peer_lines = [
        b"x-envoy-peer-metadata-id: sidecar~127.0.0.1~c-1.default~default.svc.cluster.local\r\n"
    ]
    rt.tracer = Tracer(zipkin.ProxyInfo.of("c", "default", "c-1"), None, random.Random(3))
    ex, extra = sent_upstream(monkeypatch, rt)
    added = b"".join(extra)
    assert b"x-envoy-peer-metadata-id: sidecar~" in added
    assert b"x-b3-parentspanid: a2fb4a1d1a96d312" in added  # a child span of the app's
    assert b"x-envoy-peer-metadata-id" not in {n for n, _ in ex.headers}
    assert b"x-b3-spanid" not in {n for n, _ in ex.headers}
