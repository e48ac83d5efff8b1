"""The routing engine, from plain values: every matching and action rule of sections 1–3."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from mesh.routing import Forward, LocalReply, ProxyIdentity, RequestView
from mesh.routing.routes import WeightedPicker
from tests.helpers import BOOKINFO_RULES, doc, docs, pods, route, table

V1 = "route:\n  - destination: {host: reviews, subset: v1}"
V2 = "route:\n  - destination: {host: reviews, subset: v2}"


def reviews_vs(http: str) -> str:
    return docs(
        BOOKINFO_RULES, doc("VirtualService", "reviews", f"hosts: [reviews]\nhttp:\n{http}")
    )


def label(decision) -> str:
    if isinstance(decision, LocalReply):
        return f"{decision.status} {decision.flag}".strip()
    return decision.cluster.label


def test_first_matching_rule_wins_not_the_most_specific() -> None:
    rt = table(
        reviews_vs(
            f"- match:\n  - uri: {{prefix: /}}\n  {V1}\n- match:\n  - uri: {{exact: /reviews/0}}\n  {V2}"
        )
    )
    assert label(route(rt, path="/reviews/0")) == "reviews/v1"


@pytest.mark.parametrize(
    ("match", "request_kwargs", "expected"),
    [
        ("headers: {end-user: {exact: tester}}", {"headers": {"end-user": "tester"}}, True),
        ("headers: {end-user: {exact: tester}}", {"headers": {"end-user": "Tester"}}, False),
        ("headers: {end-user: {exact: tester}}", {}, False),
        ("headers: {end-user: {prefix: test}}", {"headers": {"end-user": "tester"}}, True),
        ("headers: {end-user: {regex: 'test'}}", {"headers": {"end-user": "tester"}}, False),
        ("headers: {end-user: {regex: 'test.*'}}", {"headers": {"end-user": "tester"}}, True),
        ("headers: {end-user: {regex: '(?i)TESTER'}}", {"headers": {"end-user": "tester"}}, True),
        ("headers: {end-user: {}}", {"headers": {"end-user": ""}}, True),
        ("headers: {end-user: {}}", {}, False),
        ("withoutHeaders: {end-user: {exact: tester}}", {}, True),
        ("withoutHeaders: {end-user: {exact: tester}}", {"headers": {"end-user": "tester"}}, False),
        ("withoutHeaders: {end-user: {regex: '*'}}", {"headers": {"end-user": "x"}}, False),
        ("withoutHeaders: {end-user: {regex: '*'}}", {}, True),
        ("uri: {prefix: /reviews}", {"path": "/reviewsX"}, True),
        ("uri: {prefix: /reviews}", {"path": "/Reviews/1"}, False),
        ("{uri: {prefix: /reviews}, ignoreUriCase: true}", {"path": "/REVIEWS/1"}, True),
        ("uri: {exact: /reviews/1}", {"path": "/reviews/1?x=1"}, True),
        ("uri: {regex: '/reviews/[0-9]+'}", {"path": "/reviews/12"}, True),
        ("uri: {regex: '/reviews/[0-9]+'}", {"path": "/x/reviews/12"}, False),
        ("uri: {prefix: ''}", {"path": "/anything"}, True),
        ("method: {exact: POST}", {"method": "GET"}, False),
        ("method: {exact: POST}", {"method": "POST"}, True),
        ("queryParams: {v: {exact: '2'}}", {"path": "/r?v=2"}, True),
        ("queryParams: {v: {exact: '2'}}", {"path": "/r?v=3"}, False),
        ("queryParams: {debug: {exact: ''}}", {"path": "/r?debug"}, True),
        ("queryParams: {v: {regex: '\\d+$'}}", {"path": "/r?v=a123"}, False),
        ("queryParams: {v: {}}", {"path": "/r?v=anything"}, True),
        ("authority: {exact: reviews}", {"host": "reviews"}, True),
        ("port: 9080", {"port": 9080}, True),
        ("port: 9080", {"port": 9081}, False),
        (
            "{headers: {end-user: {exact: tester}}, uri: {prefix: /reviews}}",
            {"headers": {"end-user": "tester"}, "path": "/ratings"},
            False,
        ),
    ],
)
def test_match_conditions(match: str, request_kwargs: dict, expected: bool) -> None:
    rt = table(reviews_vs(f"- match:\n  - {match}\n  {V2}\n- {V1}"))
    kwargs = {"host": "reviews", **request_kwargs}
    host = kwargs.pop("host")
    assert (label(route(rt, host=host, **kwargs)) == "reviews/v2") is expected


def test_match_entries_are_ored() -> None:
    rt = table(
        reviews_vs(
            f"- match:\n  - headers: {{end-user: {{exact: a}}}}\n  - headers: {{end-user: {{exact: b}}}}\n  {V2}\n- {V1}"
        )
    )
    assert label(route(rt, headers={"end-user": "b"})) == "reviews/v2"
    assert label(route(rt, headers={"end-user": "c"})) == "reviews/v1"


def test_no_matching_rule_is_404_nr() -> None:
    rt = table(reviews_vs(f"- match:\n  - headers: {{end-user: {{exact: a}}}}\n  {V2}"))
    decision = route(rt)
    assert isinstance(decision, LocalReply) and (decision.status, decision.flag) == (404, "NR")


def test_unknown_host_is_404_nr_and_service_without_vs_gets_default_route() -> None:
    rt = table(BOOKINFO_RULES)
    assert label(route(rt, host="nope")) == "404 NR"
    decision = route(rt, host="ratings")
    assert isinstance(decision, Forward) and decision.cluster.label == "ratings"
    assert decision.retry.attempts == 2 and decision.timeout is None


@pytest.mark.parametrize(
    "host",
    [
        "reviews",
        "reviews:9080",
        "reviews.default",
        "reviews.default.svc",
        "reviews.default.svc.cluster.local",
        "REVIEWS",
    ],
)
def test_host_forms_are_one_host(host: str) -> None:
    rt = table(reviews_vs(f"- {V2}"))
    assert label(route(rt, host=host)) == "reviews/v2"


@pytest.mark.parametrize(
    ("weights", "window"), [((70, 30), 10), ((5, 95), 20), ((50, 50), 2), ((1, 2, 7), 10)]
)
def test_smooth_weights_exact_in_every_window(weights: tuple[int, ...], window: int) -> None:
    picker = WeightedPicker(list(weights))
    picks = [picker.pick() for _ in range(window * 50)]
    total = sum(weights)
    for start in range(0, len(picks) - total + 1, 7):
        counts = Counter(picks[start : start + total])
        for index, weight in enumerate(weights):
            assert abs(counts[index] - weight) <= 1


def test_canary_split_is_exact_after_sigma_weight_requests() -> None:
    rt = table(
        reviews_vs(
            "- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 70\n  - destination: {host: reviews, subset: v2}\n    weight: 30"
        )
    )
    counts = Counter(label(route(rt)) for _ in range(100))
    assert counts == {"reviews/v1": 70, "reviews/v2": 30}


def test_zero_weight_destination_gets_nothing_and_single_destination_ignores_weight() -> None:
    rt = table(
        reviews_vs(
            "- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 100\n  - destination: {host: reviews, subset: v2}\n    weight: 0"
        )
    )
    assert {label(route(rt)) for _ in range(50)} == {"reviews/v1"}
    rt = table(reviews_vs("- route:\n  - destination: {host: reviews, subset: v3}\n    weight: 10"))
    assert {label(route(rt)) for _ in range(10)} == {"reviews/v3"}


def test_fault_percentages_are_random_but_seeded() -> None:
    rt = table(reviews_vs("- fault: {abort: {httpStatus: 503, percentage: {value: 50}}}\n  " + V2))
    import random

    from mesh.routing import RequestView, decide

    rng = random.Random(42)
    n = 4000
    aborted = sum(decide(rt, RequestView("reviews"), rng).fault_abort == 503 for _ in range(n))
    # binomial(4000, 0.5): 99.9 % of outcomes lie within 3.29 standard deviations (±104).
    assert abs(aborted - n / 2) <= 3.29 * (n * 0.25) ** 0.5


def test_fault_without_percentage_never_fires_and_percent_is_honoured() -> None:
    rt = table(reviews_vs("- fault: {delay: {fixedDelay: 2s}}\n  " + V2))
    assert all(route(rt, seed=s).fault_delay is None for s in range(50))
    rt = table(reviews_vs("- fault: {delay: {fixedDelay: 2s, percent: 100}}\n  " + V2))
    assert route(rt).fault_delay == 2.0


def test_delay_and_abort_both_fire() -> None:
    rt = table(
        reviews_vs(
            "- fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}, abort: {httpStatus: 500, percentage: {value: 100}}}\n  "
            + V2
        )
    )
    decision = route(rt)
    assert (decision.fault_delay, decision.fault_abort) == (1.0, 500)


def test_undefined_subset_cluster_is_marked_for_503_nc() -> None:
    rt = table(
        docs(
            doc(
                "DestinationRule",
                "reviews",
                "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}",
            ),
            doc("VirtualService", "reviews", f"hosts: [reviews]\nhttp:\n- {V2}"),
        )
    )
    decision = route(rt)
    assert isinstance(decision, Forward) and decision.cluster.defined is False


def test_subset_selects_endpoints_by_labels_and_inherits_policy() -> None:
    rules = doc(
        "DestinationRule",
        "reviews",
        """
        host: reviews
        trafficPolicy:
          loadBalancer: {simple: RANDOM}
          outlierDetection: {consecutive5xxErrors: 3}
        subsets:
        - {name: v1, labels: {version: v1}}
        - name: v2
          labels: {version: v2}
          trafficPolicy:
            loadBalancer: {simple: LEAST_REQUEST}
    """,
    )
    endpoints = pods("reviews:v1", "reviews:v2", "reviews:v2")
    rt = table(
        docs(rules, doc("VirtualService", "reviews", f"hosts: [reviews]\nhttp:\n- {V2}")),
        endpoints=endpoints,
    )
    cluster = route(rt).cluster
    assert [e.labels["version"] for e in cluster.endpoints] == ["v2", "v2"]
    assert cluster.policy.load_balancer.simple == "LEAST_REQUEST"
    assert cluster.policy.outlier_detection.consecutive_5xx_errors == 3
    assert cluster.name == "outbound|9080|v2|reviews.default.svc.cluster.local"


def test_header_operations_rule_first_then_destination() -> None:
    rt = table(
        reviews_vs("""- headers:
    request: {set: {x-a: rule}, add: {x-b: one}, remove: [x-c]}
    response: {set: {x-r: 'on'}}
  route:
  - destination: {host: reviews, subset: v1}
    headers:
      request: {set: {x-a: destination}}""")
    )
    decision = route(rt)
    headers = {"x-c": "gone", "x-b": "zero"}
    decision.request_headers.apply(headers)
    assert headers == {"x-a": "destination", "x-b": "zero,one"}
    assert decision.response_headers.set == (("x-r", "on"),)


@pytest.mark.parametrize(
    ("rewrite", "match", "path", "expected"),
    [
        ("uri: /v1/", "uri: {prefix: /api/}", "/api/reviews?x=1", "/v1/reviews?x=1"),
        ("uri: /new", "uri: {exact: /old}", "/old", "/new"),
        (
            "uriRegexRewrite: {match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1'}",
            "uri: {prefix: /service}",
            "/service/foo/v1/api",
            "/v1/api/instance/foo",
        ),
    ],
)
def test_rewrite(rewrite: str, match: str, path: str, expected: str) -> None:
    rt = table(reviews_vs(f"- match:\n  - {match}\n  rewrite: {{{rewrite}}}\n  {V1}"))
    assert route(rt, path=path).path == expected


def test_authority_rewrite() -> None:
    rt = table(reviews_vs(f"- rewrite: {{authority: reviews.internal}}\n  {V1}"))
    assert route(rt).authority == "reviews.internal"


def test_redirect_and_direct_response() -> None:
    rt = table(
        reviews_vs(
            "- match:\n  - uri: {exact: /old}\n  redirect: {uri: /new, authority: example.com}\n- match:\n  - uri: {exact: /teapot}\n  directResponse: {status: 418, body: {string: short and stout}}\n- "
            + V1
        )
    )
    moved = route(rt, path="/old?q=1")
    assert (moved.status, dict(moved.headers)["location"]) == (301, "http://example.com/new?q=1")
    teapot = route(rt, path="/teapot")
    assert (teapot.status, teapot.body) == (418, b"short and stout")


def test_timeout_retries_and_mirror() -> None:
    rt = table(
        reviews_vs("""- timeout: 0.5s
  retries: {attempts: 3, perTryTimeout: 100ms, retryOn: '5xx,reset'}
  mirror: {host: reviews, subset: v3}
  mirrorPercentage: {value: 100}
  route:
  - destination: {host: reviews, subset: v1}""")
    )
    decision = route(rt)
    assert decision.timeout == 0.5
    assert (decision.retry.attempts, decision.retry.per_try_timeout) == (3, 0.1)
    assert "5xx" in decision.retry.retry_on
    assert [m.label for m in decision.mirrors] == ["reviews/v3"]


def test_mirror_percentage_zero_means_none() -> None:
    rt = table(
        reviews_vs(
            f"- mirror: {{host: reviews, subset: v3}}\n  mirrorPercentage: {{value: 0}}\n  {V1}"
        )
    )
    assert route(rt).mirrors == ()


# ---------------------------------------------------------------- gateways

GATEWAY = doc(
    "Gateway",
    "bookinfo-gateway",
    """
    selector: {istio: ingressgateway}
    servers:
    - port: {number: 8080, name: http, protocol: HTTP}
      hosts: ["*.bookinfo.local", "bookinfo.local"]
""",
)
GATEWAY_PROXY = ProxyIdentity("gw", {"istio": "ingressgateway"}, gateway=True)


def gateway_table(*vss: str):
    return table(docs(BOOKINFO_RULES, GATEWAY, *vss), proxy=GATEWAY_PROXY)


def pp(subset: str) -> str:
    return f"route:\n  - destination: {{host: productpage, subset: {subset}}}"


def test_gateway_binds_only_virtual_services_that_name_it() -> None:
    rt = gateway_table(
        doc(
            "VirtualService",
            "live",
            f"hosts: [bookinfo.local]\ngateways: [bookinfo-gateway]\nhttp:\n- {pp('v1')}",
        ),
        doc("VirtualService", "mesh-only", f"hosts: [other.bookinfo.local]\nhttp:\n- {pp('v2')}"),
    )
    assert rt.gateway_ports == (8080,)
    assert label(route(rt, host="bookinfo.local:8080", port=8080)) == "productpage/v1"
    assert label(route(rt, host="other.bookinfo.local", port=8080)) == "404 NR"
    assert label(route(rt, host="bookinfo.local", port=9999)) == "404 NR"


def test_gateway_narrows_wildcards_and_prefers_exact_hosts() -> None:
    rt = gateway_table(
        doc(
            "VirtualService",
            "all",
            f"hosts: ['*']\ngateways: [bookinfo-gateway]\nhttp:\n- {pp('v1')}",
        ),
        doc(
            "VirtualService",
            "test",
            f"hosts: [test.bookinfo.local]\ngateways: [default/bookinfo-gateway]\nhttp:\n- {pp('v2')}",
        ),
    )
    assert label(route(rt, host="test.bookinfo.local", port=8080)) == "productpage/v2"
    assert label(route(rt, host="a.b.bookinfo.local", port=8080)) == "productpage/v1"
    assert (
        label(route(rt, host="example.com", port=8080)) == "404 NR"
    )  # server hosts do not cover it


def test_sidecars_do_not_get_gateway_only_rules() -> None:
    rt = table(
        docs(
            BOOKINFO_RULES,
            GATEWAY,
            doc(
                "VirtualService",
                "pp",
                f"hosts: [productpage]\ngateways: [bookinfo-gateway]\nhttp:\n- {pp('v2')}",
            ),
        )
    )
    assert label(route(rt, host="productpage")) == "productpage"  # default route, all versions


def test_match_level_gateways_and_source_labels() -> None:
    text = docs(
        BOOKINFO_RULES,
        GATEWAY,
        doc(
            "VirtualService",
            "reviews",
            (
                "hosts: [reviews]\ngateways: [mesh, bookinfo-gateway]\nhttp:\n"
                f"- match:\n  - sourceLabels: {{app: productpage, version: v2}}\n  {V2}\n- {V1}"
            ),
        ),
    )
    from_v2 = table(text, proxy=ProxyIdentity("pp2", {"app": "productpage", "version": "v2"}))
    from_v1 = table(text, proxy=ProxyIdentity("pp1", {"app": "productpage", "version": "v1"}))
    assert label(route(from_v2)) == "reviews/v2"
    assert label(route(from_v1)) == "reviews/v1"


def test_hostile_header_against_regex_is_linear_time() -> None:
    import time

    rt = table(
        reviews_vs(f"- match:\n  - headers: {{cookie: {{regex: '(a+)+b'}}}}\n  {V2}\n- {V1}")
    )
    started = time.perf_counter()
    assert label(route(rt, headers={"cookie": "a" * 50_000})) == "reviews/v1"
    assert time.perf_counter() - started < 0.5  # a backtracking engine would take ages


def test_sticky_cookie_regex_from_the_course() -> None:
    from pathlib import Path

    text = (
        Path("scenarios/reset.yaml").read_text()
        + "---\n"
        + Path("scenarios/canary-sticky.yaml").read_text()
    )
    from mesh.manager.yaml_files import load_paths

    loaded = load_paths(["scenarios/reset.yaml", "scenarios/canary-sticky.yaml"])
    assert loaded.ok, loaded.issues
    del text
    from mesh.routing import compile_config

    rt = compile_config(loaded.resources, pods("productpage:v1", "productpage:v2"), GATEWAY_PROXY)
    for cookie in (
        "product-page=v2",
        "session=abc; product-page=v2",
        "product-page=v2;session=abc",
    ):
        assert (
            label(route(rt, host="bookinfo.local", port=8080, headers={"cookie": cookie}))
            == "productpage/v2"
        )
    counts = Counter(
        label(route(rt, host="bookinfo.local", port=8080, headers={"cookie": "product-page=v1"}))
        for _ in range(10)
    )
    assert counts == {"productpage/v1": 7, "productpage/v2": 3}


def test_gateway_https_redirect_server() -> None:
    gateway = doc(
        "Gateway",
        "secure-gateway",
        """
        selector: {istio: ingressgateway}
        servers:
        - port: {number: 8080, name: http, protocol: HTTP}
          hosts: ["bookinfo.local"]
          tls: {httpsRedirect: true}
    """,
    )
    vs = doc(
        "VirtualService",
        "live",
        f"hosts: [bookinfo.local]\ngateways: [secure-gateway]\nhttp:\n- {pp('v1')}",
    )
    rt = table(docs(BOOKINFO_RULES, gateway, vs), proxy=GATEWAY_PROXY)
    moved = route(rt, host="bookinfo.local", port=8080, path="/productpage?u=1")
    assert isinstance(moved, LocalReply) and moved.status == 301
    assert dict(moved.headers)["location"] == "https://bookinfo.local/productpage?u=1"


def test_rules_keyed_on_absent_headers_are_skipped_with_the_same_answers() -> None:
    """``decide`` walks a per-header-presence plan; every combination of the headers the
    rules name must route exactly as evaluating every matcher in order would."""
    from itertools import product

    from mesh.routing.match import split_path

    v3 = "route:\n  - destination: {host: reviews, subset: v3}"
    rt = table(
        reviews_vs(
            f"- match:\n  - headers: {{end-user: {{exact: jason}}}}\n  {V2}\n"
            f"- match:\n  - headers: {{x-canary: {{regex: 'v[23]'}}}}\n    uri: {{prefix: /r}}\n"
            f"  - headers: {{x-debug: {{}}}}\n  {v3}\n"
            f"- match:\n  - withoutHeaders: {{end-user: {{}}}}\n    uri: {{prefix: /anon}}\n  {V2}\n"
            f"- match:\n  - uri: {{prefix: /reviews}}\n  {V1}\n"
            f"- {v3}"
        )
    )
    vhost = rt.mesh.resolve("reviews")
    assert vhost.relevant == {"end-user", "x-canary", "x-debug"}
    values = {"end-user": (None, "jason", "bob"), "x-canary": (None, "v2", "v9"),
              "x-debug": (None, "")}  # fmt: skip
    for combo in product(*values.values()):
        headers = {k: v for k, v in zip(values, combo, strict=True) if v is not None}
        for path in ("/reviews/0", "/anon", "/r", "/x"):
            request = RequestView(host="reviews", path=path, headers=headers)
            brute = next(
                (rule for rule in vhost.rules
                 if not rule.matchers or any(m.matches(request, split_path(path)[0])
                                             for m in rule.matchers)),
                None,
            )  # fmt: skip
            decision = route(rt, path=path, headers=headers)
            assert brute is not None and label(decision) == brute.targets[0].cluster.label, (
                headers, path, label(decision))  # fmt: skip
    assert len(vhost.plans) == 8  # one plan per presence pattern seen


def test_gateway_merging_two_virtual_services_keeps_header_rules() -> None:
    # Two Gateways on one port: the second one's rules merge into the first one's vhost.
    gw = doc("Gateway", "gw", "selector: {istio: ingressgateway}\nservers:\n"
             "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']")  # fmt: skip
    first = doc("VirtualService", "a", "hosts: [shop.example]\ngateways: [gw]\nhttp:\n"
                "- match:\n  - uri: {prefix: /a}\n  route:\n  - destination: {host: reviews, subset: v1}")  # fmt: skip
    gw2 = gw.replace("name: gw", "name: gw2")
    second = doc("VirtualService", "b", "hosts: [shop.example]\ngateways: [gw2]\nhttp:\n"
                 "- match:\n  - headers: {end-user: {exact: jason}}\n  route:\n"
                 "  - destination: {host: reviews, subset: v2}")  # fmt: skip
    gateway = ProxyIdentity("gw", {"istio": "ingressgateway"}, gateway=True)
    rt = table(docs(BOOKINFO_RULES, gw, gw2, first, second), proxy=gateway)
    assert label(route(rt, "shop.example", path="/b", port=80,
                       headers={"end-user": "jason"})) == "reviews/v2"  # fmt: skip
    assert label(route(rt, "shop.example", path="/b", port=80)) == "404 NR"
    assert label(route(rt, "shop.example", path="/a", port=80)) == "reviews/v1"


def test_pseudo_header_match_reads_the_request() -> None:
    """Istio accepts ``headers: {':method': {exact: POST}}``; Envoy matches it on the method."""
    rt = table(
        doc(
            "VirtualService",
            "reviews",
            """
            hosts: [reviews]
            http:
            - match:
              - headers: {':method': {exact: POST}}
              route: [{destination: {host: reviews}}]
            - route: [{destination: {host: reviews}}]
            """,
        ),
        endpoints=pods("reviews:v1"),
    )
    post, get = route(rt, method="POST"), route(rt, method="GET")
    assert isinstance(post, Forward) and isinstance(get, Forward)
    assert (post.rule_index, get.rule_index) == (0, 1)


def test_no_route_body_names_the_host_path_and_the_hosts_the_gateway_serves() -> None:
    # Opening localhost:8080 during blue/green: Envoy's 404 NR, and a body saying why.
    rt = gateway_table(
        doc("VirtualService", "live", f"hosts: [bookinfo.local]\ngateways: [bookinfo-gateway]\nhttp:\n- {pp('v1')}"),
        doc("VirtualService", "test", f"hosts: [test.bookinfo.local]\ngateways: [bookinfo-gateway]\nhttp:\n- {pp('v2')}"),
    )  # fmt: skip
    decision = route(rt, host="localhost:8080", path="/productpage", port=8080)
    assert isinstance(decision, LocalReply) and (decision.status, decision.flag) == (404, "NR")
    body = decision.body.decode()
    assert 'Host "localhost:8080"' in body and '"/productpage"' in body
    assert "Hosts served: bookinfo.local, test.bookinfo.local" in body


def test_no_route_body_says_which_virtual_service_had_no_matching_rule() -> None:
    rt = gateway_table(
        doc(
            "VirtualService",
            "bookinfo",
            "hosts: ['*']\ngateways: [bookinfo-gateway]\nhttp:\n"
            f"- match:\n  - uri: {{exact: /productpage}}\n  {pp('v1')}",
        )
    )
    body = route(rt, host="bookinfo.local", path="/nothing", port=8080).body.decode()
    assert 'no rule of VirtualService bookinfo matches path "/nothing"' in body
    assert "Hosts served: bookinfo.local, *.bookinfo.local" in body  # narrowed to the server's
    no_server = route(rt, host="bookinfo.local", port=9999).body.decode()
    assert "no server on port 9999 (ports: 8080)" in no_server


def test_no_route_body_is_bounded_and_printable_whatever_the_client_sends() -> None:
    rt = table(BOOKINFO_RULES)
    decision = route(rt, host="h" * 5000 + "\x00\x1b[31m", path="/" + "p" * 5000)
    text = decision.body.decode()
    assert len(decision.body) < 600 and "\x00" not in text and "\x1b" not in text
    # One name per service (not its .default... aliases), sorted.
    assert re.search(r"Hosts served: details, (.*, )?productpage, ratings, reviews\n", text), text
