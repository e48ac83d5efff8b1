"""The analyzer: every mistake the issue lists, with Istio's codes and severities."""

from __future__ import annotations

import pytest

from tests.helpers import BOOKINFO_RULES, doc, docs, findings, pods

VS = "VirtualService"


def vs(spec: str, name: str = "reviews") -> str:
    return docs(BOOKINFO_RULES, doc(VS, name, spec))


ROUTE = "route:\n  - destination: {host: reviews, subset: v1}"

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    ("clean", vs(f"hosts: [reviews]\nhttp:\n- {ROUTE}"), None, None),
    (
        "weights-negative",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: -10\n  - destination: {host: reviews, subset: v2}\n    weight: 110"
        ),
        "Error IST0106 http[0].route[0].weight",
        "cannot be negative",
    ),
    (
        "weights-all-zero",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 0\n  - destination: {host: reviews, subset: v2}\n    weight: 0"
        ),
        "Error IST0106 http[0].route",
        "all zero",
    ),
    (
        "weights-not-100",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 70\n  - destination: {host: reviews, subset: v2}\n    weight: 20"
        ),
        "Warning IST0133 http[0].route",
        "sum to 90",
    ),
    (
        "subset-undefined",
        vs("hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v9}"),
        "Error IST0101 http[0].route[0].destination.subset",
        'subset "v9" is not defined for host reviews',
    ),
    (
        "host-undefined",
        vs("hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reveiws}"),
        "Error IST0101 http[0].route[0].destination.host",
        "not a known service",
    ),
    (
        "bad-regex",
        vs(
            "hosts: [reviews]\nhttp:\n- match:\n  - headers: {cookie: {regex: '^(*?;)?(product-page=v2)(;*)??'}}\n  "
            + ROUTE
        ),
        "Error IST0106 http[0].match[0].headers.cookie.regex",
        "no argument for repetition operator",
    ),
    (
        "regex-star-presence",
        vs("hosts: [reviews]\nhttp:\n- match:\n  - headers: {end-user: {regex: '*'}}\n  " + ROUTE),
        "Error IST0106 http[0].match[0].headers.end-user.regex",
        "use {} instead",
    ),
    (
        "empty-header-prefix",
        vs("hosts: [reviews]\nhttp:\n- match:\n  - headers: {end-user: {prefix: ''}}\n  " + ROUTE),
        "Error IST0106 http[0].match[0].headers.end-user.prefix",
        "empty prefix",
    ),
    (
        "sub-ms-duration",
        vs("hosts: [reviews]\nhttp:\n- timeout: 0.5ms\n  " + ROUTE),
        "Error IST0106 http[0].timeout",
        "at least 1ms",
    ),
    (
        "percentage-over-100",
        vs(
            "hosts: [reviews]\nhttp:\n- fault: {abort: {httpStatus: 503, percentage: {value: 150}}}\n  "
            + ROUTE
        ),
        "Error IST0106 http[0].fault.abort.percentage.value",
        "between 0 and 100",
    ),
    (
        "abort-status-out-of-range",
        vs(
            "hosts: [reviews]\nhttp:\n- fault: {abort: {httpStatus: 700, percentage: {value: 50}}}\n  "
            + ROUTE
        ),
        "Error IST0106 http[0].fault.abort.httpStatus",
        "between 200 and 600",
    ),
    (
        "fault-without-percentage",
        vs("hosts: [reviews]\nhttp:\n- fault: {delay: {fixedDelay: 2s}}\n  " + ROUTE),
        "Warning IST0133 http[0].fault.delay",
        "never injected",
    ),
    (
        "fault-empty",
        vs("hosts: [reviews]\nhttp:\n- fault: {}\n  " + ROUTE),
        "Error IST0106 http[0].fault",
        "delay and/or abort",
    ),
    (
        "redirect-not-3xx",
        vs("hosts: [reviews]\nhttp:\n- redirect: {uri: /new, redirectCode: 200}"),
        "Error IST0106 http[0].redirect.redirectCode",
        "must be one of 301",
    ),
    (
        "rule-after-catch-all",
        vs(
            f"hosts: [reviews]\nhttp:\n- {ROUTE}\n- match:\n  - headers: {{end-user: {{exact: tester}}}}\n  {ROUTE}"
        ),
        "Warning IST0130 http[1]",
        "unreachable",
    ),
    (
        "duplicate-match",
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - uri: {{prefix: /a}}\n  {ROUTE}\n- match:\n  - uri: {{prefix: /a}}\n  {ROUTE}"
        ),
        "Info IST0131 http[1].match[0]",
        "ineffective",
    ),
    (
        "two-mesh-vs-one-host",
        docs(
            vs(f"hosts: [reviews]\nhttp:\n- {ROUTE}"),
            doc(VS, "reviews-too", f"hosts: [reviews.default.svc.cluster.local]\nhttp:\n- {ROUTE}"),
        ),
        "Error IST0109 hosts[0]",
        "also routed by VirtualService reviews",
    ),
    (
        "missing-gateway",
        vs(f"hosts: [bookinfo.local]\ngateways: [nope-gateway]\nhttp:\n- {ROUTE}"),
        "Error IST0101 gateways[0]",
        'gateway "nope-gateway" is not defined',
    ),
    (
        "gateway-hosts-disjoint",
        docs(
            vs(f"hosts: [bookinfo.local]\ngateways: [gw]\nhttp:\n- {ROUTE}"),
            doc(
                "Gateway",
                "gw",
                "selector: {istio: ingressgateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: ['*.example.com']",
            ),
        ),
        "Warning IST0132 hosts",
        "none of the hosts",
    ),
    (
        "duplicate-subset",
        doc(
            "DestinationRule",
            "reviews",
            "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v1, labels: {version: v2}}",
        ),
        "Error IST0106 subsets[1].name",
        "duplicate subset name",
    ),
    (
        "subset-selects-no-pods",
        doc(
            "DestinationRule",
            "reviews",
            "host: reviews\nsubsets:\n- {name: v9, labels: {version: v9}}",
        ),
        "Error IST0173 subsets[0]",
        "selects no pods",
    ),
    (
        "dr-unknown-host",
        doc(
            "DestinationRule",
            "nothing",
            "host: nothing\nsubsets:\n- {name: v1, labels: {version: v1}}",
        ),
        "Warning IST0174 host",
        "not a known service",
    ),
    (
        "consecutive-errors-deprecated",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  outlierDetection: {consecutiveErrors: 2}",
        ),
        "Warning IST0135 trafficPolicy.outlierDetection.consecutiveErrors",
        "deprecated",
    ),
    (
        "max-ejection-over-100",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  outlierDetection: {maxEjectionPercent: 120}",
        ),
        "Error IST0106 trafficPolicy.outlierDetection",
        "between 0 and 100",
    ),
    (
        "empty-traffic-policy",
        doc("DestinationRule", "details", "host: details\ntrafficPolicy: {}"),
        "Error IST0106 trafficPolicy",
        "at least one field",
    ),
    (
        "star-host-on-mesh",
        vs(f"hosts: ['*']\nhttp:\n- {ROUTE}"),
        "Error IST0106 hosts[0]",
        "not allowed",
    ),
    (
        "route-and-redirect",
        vs(f"hosts: [reviews]\nhttp:\n- redirect: {{uri: /x}}\n  {ROUTE}"),
        "Error IST0106 http[0]",
        "only one of",
    ),
    (
        "retry-on-unknown",
        vs(
            f"hosts: [reviews]\nhttp:\n- retries: {{attempts: 3, retryOn: '5xx,sometimes'}}\n  {ROUTE}"
        ),
        "Error IST0106 http[0].retries.retryOn",
        "sometimes",
    ),
    (
        "empty-match-entry",
        vs(f"hosts: [reviews]\nhttp:\n- match:\n  - {{}}\n  {ROUTE}"),
        "Error IST0106 http[0].match[0]",
        "may not be empty",
    ),
    (
        "pseudo-header",
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - headers: {{':method': {{exact: GET}}}}\n  {ROUTE}"
        ),
        "Error IST0106 http[0].match[0].headers.:method",
        "pseudo-header",
    ),
    (
        "gateway-selector-no-pods",
        doc(
            "Gateway",
            "gw",
            "selector: {istio: egressgateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: ['*']",
        ),
        "Error IST0101 selector",
        "matches no gateway pod",
    ),
    (
        "gateway-no-port-name",
        doc(
            "Gateway",
            "gw",
            "selector: {istio: ingressgateway}\nservers:\n- port: {number: 8080, protocol: HTTP}\n  hosts: ['*']",
        ),
        "Error IST0106 servers[0].port.name",
        "required",
    ),
    (
        "tls-no-effect",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  tls: {mode: ISTIO_MUTUAL}",
        ),
        "Info MSH0002 trafficPolicy.tls",
        "no effect",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    found = findings(text)
    if expected is None:
        assert [f for f in found if not f.startswith("Info")] == []
        return
    matching = [f for f in found if f.startswith(expected + ":")]
    assert matching, f"no {expected!r} in {found}"
    assert any(fragment in f for f in matching), matching


def test_empty_uri_prefix_is_valid() -> None:
    found = findings(vs(f"hosts: [reviews]\nhttp:\n- match:\n  - uri: {{prefix: ''}}\n  {ROUTE}"))
    assert not [f for f in found if f.startswith("Error")]


def test_without_headers_regex_star_means_absent_and_is_valid() -> None:
    found = findings(
        vs(
            f"hosts: [reviews]\nhttp:\n- match:\n  - withoutHeaders: {{end-user: {{regex: '*'}}}}\n  {ROUTE}"
        )
    )
    assert not [f for f in found if f.startswith("Error")]


def test_every_finding_is_reported_not_only_the_first() -> None:
    found = findings(
        vs(
            "hosts: [reviews]\nhttp:\n- timeout: 0.1ms\n  fault: {abort: {httpStatus: 700, percentage: {value: 50}}}\n  route:\n  - destination: {host: reviews, subset: v9}"
        )
    )
    assert len([f for f in found if f.startswith("Error")]) >= 3


def test_live_endpoints_decide_ist0173() -> None:
    text = doc(
        "DestinationRule",
        "reviews",
        "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v2, labels: {version: v2}}",
    )
    found = findings(text, endpoints=pods("reviews:v1"))
    assert [f for f in found if "IST0173" in f] == [
        f for f in found if f.startswith("Error IST0173 subsets[1]")
    ]
    assert len([f for f in found if "IST0173" in f]) == 1
