"""The graph from plain samples: shares, intervals, configured weights, flags, ejections."""

from __future__ import annotations

import pytest

from mesh.console.config_view import Badge, ConfigView
from mesh.console.graph import Ejection, Pod, build_graph, parse_duration, parse_ejections, wilson


def sample(
    src: str, dst: str | None, service: str, value: float, code: str = "200", flags: str = "-"
):  # type: ignore[no-untyped-def]
    s_app, _, s_ver = src.rpartition("-") if src != "istio-ingressgateway" else (src, "", "unknown")
    labels = {
        "source_workload": src, "source_app": s_app, "source_version": s_ver,
        "destination_service_name": service, "response_code": code, "response_flags": flags,
    }  # fmt: skip
    if dst:
        d_app, _, d_ver = dst.rpartition("-")
        labels |= {
            "destination_workload": dst,
            "destination_app": d_app,
            "destination_version": d_ver,
        }
    else:
        labels |= {
            "destination_workload": "unknown",
            "destination_app": "unknown",
            "destination_version": "unknown",
        }
    return labels, value


PODS = [
    Pod("istio-ingressgateway", "istio-ingressgateway", "unknown", "istio-system", gateway=True),
    Pod("productpage-v1", "productpage", "v1"),
    Pod("productpage-v2", "productpage", "v2"),
    Pod("reviews-v1", "reviews", "v1"),
    Pod("details-v2", "details", "v2"),
    Pod("details-v2-failing", "details", "v2"),
]


def test_wilson_interval():
    low, high = wilson(30, 100)
    assert low == pytest.approx(0.2189, abs=1e-3) and high == pytest.approx(0.3958, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) is None


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("1m", 60), ("1h", 3600), ("5s", 5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "2s", "2h", "x", "-5s"])
def test_bad_durations_say_why(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_edges_shares_configured_and_flags():
    view = ConfigView(
        version=12,
        configured={
            ("istio-ingressgateway", "productpage"): {"productpage-v1": 0.7, "productpage-v2": 0.3},
            ("productpage-v1", "reviews"): None,
        },
        badges={"productpage": [Badge("weighted-split", "weighted split 70/30")]},
    )
    graph = build_graph(
        window=30,
        requests=[
            sample("istio-ingressgateway", "productpage-v1", "productpage", 690),
            sample("istio-ingressgateway", "productpage-v1", "productpage", 10, "503", "UF,URX"),
            sample("istio-ingressgateway", "productpage-v2", "productpage", 300),
            sample("productpage-v1", "reviews-v1", "reviews", 80),
            sample("productpage-v1", None, "reviews", 20, "503", "FI"),
        ],
        p95=[(sample("istio-ingressgateway", "productpage-v1", "productpage", 0)[0], 12.34)],
        pods=PODS,
        view=view,
        ejections=[
            Ejection("details-v2-failing", "productpage-v1", 1300.0),
            Ejection("details-v2", "x", 900.0),
        ],
        now=1000.0,
    )
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    v1 = edges[("istio-ingressgateway", "productpage-v1")]
    assert v1["requests"] == 700 and v1["rps"] == pytest.approx(700 / 30, abs=0.01)
    assert v1["share"] == 0.7 and v1["configured_share"] == 0.7
    assert v1["share_ci95"][0] < 0.7 < v1["share_ci95"][1]
    assert v1["error_rate"] == pytest.approx(10 / 700, abs=1e-4)
    assert v1["flags"] == {"UF": 10, "URX": 10} and v1["p95_ms"] == 12.3
    assert edges[("istio-ingressgateway", "productpage-v2")]["configured_share"] == 0.3
    aborted = edges[("productpage-v1", "reviews")]  # no pod answered: the service node
    assert (
        aborted["flags"] == {"FI": 20} and aborted["error_rate"] == 1.0 and aborted["share"] == 0.2
    )
    assert aborted["configured_share"] is None
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert (
        nodes["reviews"]["kind"] == "service" and nodes["istio-ingressgateway"]["kind"] == "gateway"
    )
    assert nodes["details-v2"]["pods"] == ["details-v2", "details-v2-failing"]  # one versioned node
    assert nodes["details-v2"]["ejected"] == [
        {"pod": "details-v2-failing", "by": "productpage-v1", "seconds_left": 300.0}
    ]  # the expired one is gone
    assert [b["kind"] for b in nodes["details-v2"]["badges"]] == ["ejected"]
    assert nodes["productpage-v2"]["badges"] == [
        {"kind": "weighted-split", "label": "weighted split 70/30"}
    ]
    assert graph["config_version"] == 12


def test_configured_destinations_without_traffic_yet_get_a_dashed_edge():
    view = ConfigView(
        configured={
            ("istio-ingressgateway", "productpage"): {"productpage-v1": 0.5, "productpage-v2": 0.5}
        }
    )
    graph = build_graph(
        window=30,
        requests=[sample("istio-ingressgateway", "productpage-v1", "productpage", 10)],
        pods=PODS,
        view=view,
    )
    new = next(e for e in graph["edges"] if e["target"] == "productpage-v2")
    assert new["requests"] == 0 and new["share"] == 0.0 and new["configured_share"] == 0.5


def test_ejections_field_of_a_status_record():
    status = {
        "ejected": [{"pod": "a", "until": 5}, {"pod": "b"}, "x", {"pod": "c", "until": "soon"}]
    }
    assert parse_ejections("caller", status) == [Ejection("a", "caller", 5.0)]
    assert parse_ejections("caller", {}) == [] and parse_ejections("caller", {"ejected": 3}) == []


def test_an_edge_is_mtls_only_when_every_request_was_and_names_the_principals():
    def secure(policy: str, value: float, src: str = "productpage-v1"):  # type: ignore[no-untyped-def]
        labels, _ = sample(src, "reviews-v1", "reviews", value)
        return labels | {
            "connection_security_policy": policy,
            "source_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
            if policy == "mutual_tls"
            else "unknown",
            "destination_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        }, value

    pods = [*PODS, Pod("reviews-v1", "reviews", "v1")]
    requests = [sample("productpage-v1", "reviews-v1", "reviews", 10)]
    graph = build_graph(
        window=30, requests=requests, pods=pods, security=[secure("mutual_tls", 10)]
    )
    (edge,) = graph["edges"]
    assert edge["mtls"] is True
    assert edge["principals"] == {
        "source": ["spiffe://cluster.local/ns/default/sa/bookinfo-productpage"],
        "destination": ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"],
    }
    # Two rows for one edge are summed, not overwritten: one plaintext request is enough.
    mixed = build_graph(
        window=30,
        requests=requests,
        pods=pods,
        security=[secure("mutual_tls", 9), secure("none", 1)],
    )
    assert mixed["edges"][0]["mtls"] is False


def test_a_caller_without_a_proxy_is_the_unknown_node():
    """sleep in legacy -> httpbin in foo: only httpbin's proxy reported it (source unknown)."""
    labels = {
        "source_workload": "unknown", "source_app": "unknown", "source_version": "unknown",
        "source_workload_namespace": "unknown", "destination_workload": "httpbin",
        "destination_app": "httpbin", "destination_version": "v1",
        "destination_service_name": "httpbin", "destination_service_namespace": "foo",
        "response_code": "200", "response_flags": "-",
    }  # fmt: skip
    graph = build_graph(
        window=30, requests=[(labels, 6.0)], pods=[Pod("httpbin-1", "httpbin", "v1", "foo")]
    )
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["unknown"]["kind"] == "unknown" and nodes["httpbin-v1"]["kind"] == "app"
    (edge,) = graph["edges"]
    assert (edge["source"], edge["target"], edge["requests"], edge["share"]) == (
        "unknown",
        "httpbin-v1",
        6,
        1.0,
    )
