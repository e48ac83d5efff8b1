"""The console's server-rendered HTML: what a trainee reads on the projector, with every
colour doubled by words, and nothing from config or spans rendered unescaped."""

from __future__ import annotations

from mesh.console.views import (
    edge_lines,
    graph_svg,
    principal_lines,
    timeline_html,
    traces_html,
    traffic_svg,
    waterfall_html,
)
from mesh.telemetry.zipkin import Endpoint, Span

T0 = 1_700_000_000_000_000  # µs


def span(
    span_id: str,
    service: str,
    kind: str,
    start: int,
    duration: int,
    parent: str | None = None,
    **tags: str,
) -> Span:
    return Span(
        "a" * 32,
        span_id,
        parent,
        f"{service}:9080/*",
        kind,
        T0 + start,
        duration,
        Endpoint(service),
        tags=tags,
    )


def test_edge_words_say_share_interval_configured_errors_latency_mtls_and_flags():
    edge = {
        "rps": 4.14,
        "share": 0.31,
        "service": "reviews",
        "share_ci95": [0.27, 0.35],
        "configured_share": 0.3,
        "error_rate": 0.12,
        "p95_ms": 12.5,
        "mtls": True,
        "flags": {"FI": 3},
    }
    assert edge_lines(edge) == [
        "4.1 req/s · 31 % of reviews",
        "95 % CI 27–35 % · configured 30 %",
        "err 12 % · p95 12 ms · 🔒 mTLS",
        "flags FI×3",
    ]
    # Without traffic yet: no share, no interval; a dash, not a made-up number.
    assert edge_lines({"rps": 0.0, "service": "ratings"}) == [
        "0.0 req/s · – of ratings",
        "err 0 %",
    ]


def test_graph_without_prometheus_or_pods_says_so():
    empty = {"nodes": [], "edges": []}
    assert "No pods registered yet" in graph_svg(empty)
    down = graph_svg(empty, "Prometheus at http://127.0.0.1:9 is not reachable")
    assert 'role="alert"' in down and "is not reachable — showing the config only" in down


def test_graph_draws_nodes_edges_ejections_and_flags_in_words_and_escapes_names():
    def node(node_id: str, app: str, **more: object) -> dict[str, object]:
        return {"id": node_id, "app": app, "version": "v1", "kind": "workload",
                "pods": [node_id], "badges": [], "ejected": [], **more}  # fmt: skip

    graph = {
        "config_version": 7,
        "window_seconds": 30,
        "nodes": [
            node("productpage-v1", "productpage"),
            node(
                "reviews-<b>v1</b>",
                "reviews",
                badges=[{"kind": "fault-injection", "label": "fault injection"}],
                ejected=[{"pod": "reviews-v1-1", "by": "productpage-v1", "seconds_left": 12.4}],
            ),
        ],
        "edges": [
            {
                "source": "productpage-v1",
                "target": "reviews-<b>v1</b>",
                "service": "reviews",
                "rps": 2.0,
                "requests": 60,
                "share": 1.0,
                "error_rate": 0.1,
                "flags": {"FI": 6},
            },
        ],
    }
    svg = graph_svg(graph)
    assert "reviews-&lt;b&gt;v1&lt;/b&gt;" in svg and "<b>v1</b>" not in svg
    assert "2.0 req/s · 100 % of reviews" in svg and "err 10 %" in svg
    assert "◆ fault injection" in svg
    assert "✗ EJECTED reviews-v1-1" in svg and "by productpage-v1, 12 s left" in svg
    assert '<b id="config-version">7</b>' in svg and "<b>FI</b>" in svg  # the flag explained
    dashed = graph_svg({**graph, "edges": [{**graph["edges"][0], "requests": 0}]})
    assert 'stroke-dasharray="8 6"' in dashed and 'stroke-dasharray="8 6"' not in svg


def test_an_mtls_edge_names_its_principals_on_hover():
    edge = {
        "source": "productpage-v1", "target": "reviews-v1", "service": "reviews", "rps": 1.0,
        "requests": 30, "share": 1.0, "mtls": True,
        "principals": {
            "source": ["spiffe://cluster.local/ns/default/sa/bookinfo-productpage"],
            "destination": ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"],
        },
    }  # fmt: skip
    assert principal_lines(edge) == [
        "source: spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        "destination: spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
    ]
    node = {"version": "v1", "kind": "workload", "badges": [], "ejected": []}
    svg = graph_svg(
        {
            "nodes": [
                {"id": "productpage-v1", "app": "productpage", "pods": ["productpage-v1"], **node},
                {"id": "reviews-v1", "app": "reviews", "pods": ["reviews-v1"], **node},
            ],
            "edges": [edge],
        }
    )
    assert "<title>mTLS\nsource: spiffe://cluster.local/ns/default/sa/bookinfo-productpage\n" in svg
    assert "🔒 mTLS" in svg
    # A plaintext edge has no principals and no tooltip.
    assert principal_lines({"mtls": False}) == []


def test_timeline_newest_first_with_scenario_endpoint_moves_and_escaping():
    timeline = [
        {"version": 1, "time": "2026-11-26T14:28:09.123Z", "changed": ["Gateway default/gw"]},
        {
            "version": 2,
            "time": "2026-11-26T14:29:10.000Z",
            "changed": [],
            "endpoints": {"added": ["reviews-v3"], "removed": ["reviews-v1"]},
        },
        {
            "version": 3,
            "time": "2026-11-26T14:30:11.000Z",
            "changed": ["VirtualService default/<script>"],
            "scenario": "canary-5-95",
        },
    ]
    html = timeline_html(timeline)
    assert html.index('data-version="3"') < html.index('data-version="2"')
    assert html.index('data-version="2"') < html.index('data-version="1"')
    assert "<td>14:30:11</td><td>canary-5-95</td>" in html
    assert "endpoints +reviews-v3 −reviews-v1" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert 'data-version="1"' not in timeline_html(timeline, limit=2)
    assert "No published config yet" in timeline_html([])


def test_traffic_chart_per_app_with_a_line_per_version_and_config_markers():
    start, end = 1_700_000_000.0, 1_700_000_120.0
    series = [
        ({"destination_app": "reviews", "destination_version": "v1"}, [(start + 60, 3.0)]),
        ({"destination_app": "reviews", "destination_version": "v2"}, [(start + 60, 1.0)]),
        ({"destination_app": "ratings", "destination_version": "v1"}, [(start + 60, 0.0)]),
    ]
    timeline = [{"version": 4, "time": "2023-11-14T22:14:20.000Z"}]  # start + 80 s
    svg = traffic_svg(series, timeline, start, end)
    assert svg.count("<polyline") == 2 and 'data-app="reviews"' in svg
    assert "■ v1 3.0/s" in svg and "■ v2 1.0/s" in svg
    assert "ratings" not in svg  # no request to it: no empty chart
    assert "v4 22:14:20" in svg
    assert "No requests in the last minutes" in traffic_svg([], [], start, end)
    assert 'role="alert"' in traffic_svg(series, [], start, end, "Prometheus refused the query")


def test_traces_and_waterfall_mark_failures_in_words_and_order_client_before_server():
    spans = [
        span("1", "istio-ingressgateway.istio-system", "SERVER", 0, 9000, **{
            "http.url": "http://bookinfo/productpage", "http.status_code": "200"}),
        span("2", "productpage.default", "CLIENT", 1000, 5000, "1", **{
            "http.status_code": "503", "response_flags": "UF"}),
        span("2", "reviews.default", "SERVER", 1500, 4000, "1", **{"http.status_code": "503"}),
    ]  # fmt: skip
    rows = traces_html([spans])
    assert "✗ 2 failed" in rows and "http://bookinfo/productpage" in rows
    assert "<td>9 ms</td><td>3</td>" in rows
    waterfall = waterfall_html(spans, "a" * 32)
    order = [
        waterfall.index(s)
        for s in ("istio-system · SERVER", "default · CLIENT", "default · SERVER")
    ]
    assert order == sorted(order)
    assert "✗ 503 UF" in waterfall and "9.0 ms · 3 spans" in waterfall
    gone = waterfall_html(None, "<nope>")
    assert "&lt;nope&gt; is not (or no longer) in the collector" in gone
