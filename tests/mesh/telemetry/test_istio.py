"""Istio's label names and values, from plain values."""

from __future__ import annotations

import pytest

from mesh.telemetry import istio
from mesh.telemetry.istio import Peer, Service, label_prefix, new_request_metrics, request_key

PRODUCTPAGE = Peer.of_pod("productpage-v1", "default", {"app": "productpage", "version": "v1"})
REVIEWS_V2 = Peer.of_pod(
    "reviews-v2",
    "default",
    {"app": "reviews", "version": "v2"},
    principal=istio.principal("default", "bookinfo-reviews"),
)
GATEWAY = Peer.of_pod(
    "istio-ingressgateway",
    "istio-system",
    {"app": "istio-ingressgateway", "istio": "ingressgateway"},
)


def labels_of(key: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(istio.LABELS, key, strict=True))


def test_label_names_are_istios():
    expected = {
        "reporter", "source_workload", "source_workload_namespace", "source_principal",
        "source_app", "source_version", "source_cluster", "source_canonical_service",
        "source_canonical_revision", "destination_workload", "destination_workload_namespace",
        "destination_principal", "destination_app", "destination_version", "destination_cluster",
        "destination_canonical_service", "destination_canonical_revision",
        "destination_service", "destination_service_name", "destination_service_namespace",
        "request_protocol", "response_code", "grpc_response_status", "response_flags",
        "connection_security_policy",
    }  # fmt: skip
    assert set(istio.LABELS) == expected and len(istio.LABELS) == len(expected)


def test_a_source_report_with_flags_and_unknowns():
    prefix = label_prefix("source", PRODUCTPAGE, REVIEWS_V2, Service.of("reviews", "default"))
    labels = labels_of(request_key(prefix, 200))
    assert labels["reporter"] == "source"
    assert labels["source_workload"] == "productpage-v1"
    assert labels["source_app"] == "productpage" and labels["source_version"] == "v1"
    assert labels["source_principal"] == "unknown"  # no mTLS
    assert labels["source_cluster"] == "Kubernetes"
    assert (
        labels["destination_principal"] == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    )
    assert labels["destination_service"] == "reviews.default.svc.cluster.local"
    assert labels["destination_service_name"] == "reviews"
    assert labels["destination_service_namespace"] == "default"
    assert labels["destination_canonical_service"] == "reviews"
    assert labels["destination_canonical_revision"] == "v2"
    assert labels["request_protocol"] == "http"
    assert labels["response_code"] == "200"
    assert labels["response_flags"] == "-"  # no flag
    assert labels["grpc_response_status"] == ""  # plain HTTP
    assert labels["connection_security_policy"] == "unknown"  # the source cannot know
    aborted = labels_of(
        request_key(
            label_prefix(
                "source", PRODUCTPAGE, istio.UNKNOWN_PEER, Service.of("reviews", "default")
            ),
            503,
            "FI",
        )
    )
    assert (
        aborted["destination_workload"] == "unknown" and aborted["destination_version"] == "unknown"
    )
    assert aborted["response_flags"] == "FI"


def test_gateway_and_pods_without_version():
    assert GATEWAY.version == "unknown" and GATEWAY.canonical_revision == "latest"
    assert GATEWAY.canonical_service == "istio-ingressgateway"
    assert GATEWAY.namespace == "istio-system"
    bare = Peer.of_pod("sleep", "default", {})
    assert bare.app == "unknown" and bare.canonical_service == "sleep"
    outside = Service.outside("httpbin.org")
    assert outside.labels() == ("httpbin.org", "httpbin.org", "unknown")


def test_reporter_is_checked():
    with pytest.raises(ValueError):
        label_prefix("client", PRODUCTPAGE, REVIEWS_V2, Service.of("reviews", "default"))


def test_the_four_standard_families_with_envoys_buckets():
    metrics = new_request_metrics()
    key = request_key(
        label_prefix("destination", PRODUCTPAGE, REVIEWS_V2, Service.of("reviews", "default")),
        200,
        connection_security_policy=istio.PLAINTEXT,
    )
    metrics.record(key, 12.5, 0, 2048)
    text = metrics.render()
    for family in (
        "istio_requests_total",
        "istio_request_duration_milliseconds",
        "istio_request_bytes",
        "istio_response_bytes",
    ):
        assert f"# TYPE {family} " in text
    assert 'le="3.6e+06"' in text and 'le="0.5"' in text
    assert "istio_request_duration_milliseconds_bucket{" in text and 'le="25"} 1' in text
    assert 'connection_security_policy="none"' in text
    assert istio.BUCKETS[0] == 0.5 and istio.BUCKETS[-1] == 3600000
