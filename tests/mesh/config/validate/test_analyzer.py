"""The cross-resource analyzers: hosts, subsets, gateways, pods (IST0101, IST0109, IST0132,
IST0173, IST0174), and that every finding is reported."""

from __future__ import annotations

import pytest

from tests.helpers import ROUTE, assert_finding, doc, docs, findings, pods, vs

CNN = doc(
    "ServiceEntry",
    "cnn",
    """
    hosts: [edition.cnn.com]
    ports:
    - {number: 80, name: http-port, protocol: HTTP}
    - {number: 443, name: https-port, protocol: HTTPS}
    resolution: DNS
    """,
)
CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    (
        "service-entry-host-is-known",
        docs(
            CNN,
            vs(
                "hosts: [edition.cnn.com]\nhttp:\n- route:\n  - destination: {host: edition.cnn.com, port: {number: 80}}"
            ),
        ),
        "Info MSH0008 hosts",
        "503 no healthy upstream (UH)",
    ),
    (
        "multi-port-destination-needs-a-port",
        docs(
            CNN,
            vs(
                "hosts: [edition.cnn.com]\nhttp:\n- route:\n  - destination: {host: edition.cnn.com}"
            ),
        ),
        "Error IST0112 http[0].route[0].destination.port",
        "exposes multiple ports [80, 443]",
    ),
    (
        "destination-port-not-the-services",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, port: {number: 8080}}"
        ),
        "Error IST0101 http[0].route[0].destination.port",
        "port 8080 is not a port of reviews",
    ),
    (
        "allow-dangling-makes-a-warning",
        vs(
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v9}"
        ).replace(
            "  name: reviews\n",
            "  name: reviews\n  annotations: {meshlab.io/allow-dangling: 'true'}\n",
        ),
        "Warning IST0101 http[0].route[0].destination.subset",
        "applied anyway",
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
        "two-mesh-vs-one-host",
        docs(
            vs(f"hosts: [reviews]\nhttp:\n- {ROUTE}"),
            doc(
                "VirtualService",
                "reviews-too",
                f"hosts: [reviews.default.svc.cluster.local]\nhttp:\n- {ROUTE}",
            ),
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
        "subset-selects-no-pods",
        doc(
            "DestinationRule",
            "reviews",
            "host: reviews\nsubsets:\n- {name: v9, labels: {version: v9}}",
        ),
        "Warning IST0173 subsets[0]",
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
        "gateway-selector-no-pods",
        doc(
            "Gateway",
            "gw",
            "selector: {istio: egressgateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: ['*']",
        ),
        "Error IST0101 selector",
        "matches no gateway pod",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)


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
        f for f in found if f.startswith("Warning IST0173 subsets[1]")
    ]
    assert len([f for f in found if "IST0173" in f]) == 1
