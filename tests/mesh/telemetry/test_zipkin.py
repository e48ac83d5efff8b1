"""Span shapes as Envoy emits them, and the collector's parser, from plain values."""

from __future__ import annotations

import json

import pytest

from mesh.telemetry import b3
from mesh.telemetry.b3 import TraceContext
from mesh.telemetry.zipkin import (
    Exchange,
    ProxyInfo,
    SpanError,
    client_span,
    http_url,
    operation_name,
    parse_spans,
    server_operation,
    server_span,
)

PRODUCTPAGE = ProxyInfo.of(
    "productpage", "default", "productpage-v1", version="v1", ipv4="10.0.0.5", port=9080
)
REVIEWS = ProxyInfo.of("reviews", "default", "reviews-v2", version="v2", ipv4="10.0.0.7", port=9080)
ROOT = TraceContext("463ac35c9f6413ad", "463ac35c9f6413ad", None, True)


def exchange(status=200, flags="", duration_us=2_500_000):  # type: ignore[no-untyped-def]
    return Exchange(
        start_us=1_700_000_000_000_000,
        duration_us=duration_us,
        method="GET",
        url=http_url("http", "reviews:9080", "/reviews/0"),
        status=status,
        flags=flags,
        request_id="8d6e5c1f-0000-4000-8000-000000000001",
        user_agent="python-requests/2.31",
        request_size=0,
        response_size=358,
        upstream_cluster="outbound|9080|v2|reviews.default.svc.cluster.local",
        upstream_address="10.0.0.7:9080",
        route_name="reviews/0",
    )


def test_client_and_server_spans_share_the_id_like_envoy():
    sent = b3.child(ROOT, __import__("random").Random(3))
    name = operation_name("reviews.default.svc.cluster.local", 9080)
    client = client_span(sent, PRODUCTPAGE, exchange(503, "FI"), name).to_json()
    arrived = b3.parse(dict(b3.propagation_headers(sent)))
    server = server_span(arrived, REVIEWS, exchange(), name).to_json()
    assert client["kind"] == "CLIENT" and server["kind"] == "SERVER"
    assert client["id"] == server["id"] == sent.span_id
    assert client["parentId"] == server["parentId"] == ROOT.span_id
    assert client["traceId"] == server["traceId"] == ROOT.trace_id
    assert server["shared"] is True and "shared" not in client
    assert client["name"] == "reviews.default.svc.cluster.local:9080/*"
    assert client["localEndpoint"] == {
        "serviceName": "productpage.default",
        "ipv4": "10.0.0.5",
        "port": 9080,
    }
    assert client["timestamp"] == 1_700_000_000_000_000 and client["duration"] == 2_500_000
    tags = client["tags"]
    assert tags["http.status_code"] == "503" and tags["response_flags"] == "FI"
    assert tags["error"] == "true" and tags["component"] == "proxy"
    assert tags["upstream_cluster"] == "outbound|9080|v2|reviews.default.svc.cluster.local"
    assert tags["http.url"] == "http://reviews:9080/reviews/0" and tags["http.method"] == "GET"
    assert tags["node_id"] == "sidecar~10.0.0.5~productpage-v1.default~default.svc.cluster.local"
    assert tags["guid:x-request-id"].startswith("8d6e5c1f") and tags["route_name"] == "reviews/0"
    assert tags["istio.canonical_service"] == "productpage" and tags["istio.namespace"] == "default"
    assert "error" not in server["tags"] and server["tags"]["response_flags"] == "-"
    # What the collector accepts is what a proxy sends.
    parsed = parse_spans(json.loads(json.dumps([client, server])))
    assert [s.to_json() for s in parsed] == [client, server]


def test_gateway_node_id_and_no_response():
    gw = ProxyInfo.of("istio-ingressgateway", "istio-system", "istio-ingressgateway", gateway=True)
    span = client_span(ROOT, gw, exchange(0, "UF", 0), "x").to_json()
    assert span["localEndpoint"]["serviceName"] == "istio-ingressgateway.istio-system"
    assert span["tags"]["node_id"].startswith("router~")
    assert span["tags"]["error"] == "true" and span["duration"] == 1  # rounded up


GOOD = {"traceId": "463ac35c9f6413ad", "id": "a2fb4a1d1a96d312", "name": "GET /X", "timestamp": 1, "duration": 5,
        "localEndpoint": {"serviceName": "Front", "port": 80}, "tags": {"a": "b"}, "unknownField": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"traceId": "x"}, "expected a JSON array"),
        ([{"id": "a2fb4a1d1a96d312"}], "spans[0].traceId: required"),
        ([GOOD, {**GOOD, "traceId": "123"}], "spans[1].traceId: expected 16 or 32 hex"),
        ([{**GOOD, "id": "0" * 16}], "spans[0].id"),
        ([{**GOOD, "parentId": "a"}], "spans[0].parentId"),
        ([{**GOOD, "kind": "SRV"}], "spans[0].kind: 'SRV' is not one of"),
        ([{**GOOD, "timestamp": "now"}], "spans[0].timestamp: expected an integer"),
        ([{**GOOD, "duration": -1}], "spans[0].duration: must not be negative"),
        ([{**GOOD, "tags": {"n": 1}}], "spans[0].tags['n']: expected a string"),
        ([{**GOOD, "localEndpoint": {"port": 70000}}], "spans[0].localEndpoint.port"),
        ([{**GOOD, "shared": "yes"}], "spans[0].shared: expected true or false"),
        ([{**GOOD, "annotations": [{"value": "x"}]}], "spans[0].annotations[0]"),
        (["span"], "spans[0]: expected an object"),
    ],
)
def test_malformed_spans_name_the_field(body, reason):
    with pytest.raises(SpanError) as err:
        parse_spans(body)
    assert reason in str(err.value)


def test_parser_normalises_like_zipkin():
    (span,) = parse_spans([GOOD])
    assert span.name == "get /x" and span.service_name == "front"
    assert span.tags == {"a": "b"} and span.duration == 5
    (zero,) = parse_spans([{**GOOD, "duration": 0}])
    assert zero.duration is None


def test_server_operation_names_the_service_port_not_the_listeners():
    fqdn = "httpbin.foo.svc.cluster.local"
    # Istio's httpbin: Service port 8000, targetPort 8080 (the container's).
    assert server_operation(fqdn, [(8000, 8080)], 8080) == f"{fqdn}:8000/*"
    # Process mode: the container port matches no target; one port: that one.
    assert server_operation(fqdn, [(8000, 8080)], 47113) == f"{fqdn}:8000/*"
    # Several ports: the one whose target is the container's; no target: the same number.
    assert server_operation(fqdn, [(80, 8080), (9080, None)], 9080) == f"{fqdn}:9080/*"
    assert server_operation(fqdn, [(80, 8080), (9080, None)], 8080) == f"{fqdn}:80/*"
    assert server_operation(fqdn, [(80, 8080), (9080, None)], None) == f"{fqdn}:80/*"
    assert server_operation(fqdn, [], 9080) is None
