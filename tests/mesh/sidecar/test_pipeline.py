"""Stages 1-2 of the pipeline: the request as the router sees it, the per-request timeout."""

from __future__ import annotations

from mesh.sidecar.pipeline import request_view, split_authority
from tests.helpers import parsed_exchange


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
