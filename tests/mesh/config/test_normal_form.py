"""The normal form: every resource the lab ships survives the trip to a sidecar unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.config.loader import load_resources, load_text
from mesh.config.normal_form import NormalFormError, from_normal, to_normal
from tests.helpers import doc, security_doc
from tests.mesh.config.validate.istio import load_cases

SCENARIOS = sorted(Path(__file__).resolve().parents[3].joinpath("scenarios").glob("*.yaml"))

EVERY_KIND_OF_FIELD = doc(
    "VirtualService",
    "reviews",
    """
    hosts: [reviews]
    http:
    - match:
      - headers: {end-user: {exact: tester}, cookie: {regex: "^(.*?;)?(x=1)(;.*)?$"}}
        uri: {prefix: /api}
        withoutHeaders: {x-skip: {}}
      fault:
        delay: {fixedDelay: 2.5s, percentage: {value: 50}}
        abort: {httpStatus: 503, percentage: {value: 0.5}}
      retries: {attempts: 3, perTryTimeout: 100ms, retryOn: "5xx,503"}
      timeout: 1m30s
      corsPolicy: {allowOrigins: [{exact: "https://a.example"}], maxAge: 24h}
      headers: {request: {set: {x-a: "1"}, remove: [x-b]}}
      route:
      - destination: {host: reviews, subset: v2, port: {number: 9080}}
        weight: 100
    """,
)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_round_trips_through_json(path: Path) -> None:
    loaded = load_text(path.read_text(), str(path))
    assert loaded.resources
    for resource in loaded.resources:
        back = from_normal(json.loads(json.dumps(to_normal(resource))))
        assert (back.spec, back.key) == (resource.spec, resource.key)


def test_durations_percentages_and_string_matches_keep_their_values() -> None:
    (resource,) = load_text(EVERY_KIND_OF_FIELD).resources
    normal = json.loads(json.dumps(to_normal(resource)))
    route = normal["spec"]["http"][0]
    assert route["timeout"] == 90.0
    assert route["fault"]["delay"]["fixed_delay"] == 2.5
    assert route["match"][0]["without_headers"] == {"x-skip": {}}
    assert from_normal(normal).spec == resource.spec


def test_a_document_not_in_normal_form_is_refused() -> None:
    (resource,) = load_text(EVERY_KIND_OF_FIELD).resources
    istio_spelling = dict(resource.raw)
    with pytest.raises(NormalFormError):
        from_normal(istio_spelling)
    with pytest.raises(NormalFormError):
        from_normal({"kind": "Sidecar", "metadata": {}, "spec": {}})


SECURITY_POLICIES = "---\n".join(
    (
        security_doc(
            "AuthorizationPolicy",
            "httpbin",
            """
            selector: {matchLabels: {app: httpbin}}
            action: DENY
            rules:
            - from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"], notNamespaces: [bar]}}]
              to: [{operation: {methods: [GET], paths: ["/headers*"]}}]
              when: [{key: "request.headers[x-token]", values: [admin]}]
            - {}
            """,
            namespace="foo",
        ),
        security_doc("AuthorizationPolicy", "allow-nothing", "{}", namespace="foo"),
        security_doc("AuthorizationPolicy", "allow-none", "rules: []", namespace="bar"),
        security_doc(
            "PeerAuthentication",
            "default",
            """
            selector: {matchLabels: {app: httpbin}}
            mtls: {mode: STRICT}
            portLevelMtls: {"8080": {mode: DISABLE}}
            """,
            namespace="istio-system",
        ),
    )
)


def test_security_policies_round_trip_with_their_namespace() -> None:
    """The manager publishes PeerAuthentication and AuthorizationPolicy too: ``from:`` (a
    Python keyword), port keys, and an empty rule list that is not a missing one survive."""
    loaded = load_text(SECURITY_POLICIES)
    assert loaded.ok and len(loaded.resources) == 4, [str(i) for i in loaded.issues]
    for resource in loaded.resources:
        back = from_normal(json.loads(json.dumps(to_normal(resource))))
        assert (back.spec, back.key) == (resource.spec, resource.key)
    by_name = {r.name: r for r in loaded.resources}
    assert by_name["allow-none"].spec.rules == () and by_name["allow-nothing"].spec.rules is None


ISTIO_TABLES = {
    "VirtualService": "virtual_service",
    "DestinationRule": "destination_rule",
    "Gateway": "gateway",
    "ServiceEntry": "service_entry",
}


@pytest.mark.parametrize("kind", sorted(ISTIO_TABLES))
def test_every_valid_case_of_istio_s_tables_round_trips(kind: str) -> None:
    """Every field the model knows (ServiceEntry, delegates, TCP/TLS routes, locality...)
    reaches a sidecar as it was loaded: Istio's valid and warned cases hold them all."""
    checked = 0
    for case in load_cases(ISTIO_TABLES[kind]):
        if case["istio"] == "error":
            continue
        raw = {"apiVersion": "networking.istio.io/v1", "kind": kind, "metadata": {"name": "c"}}
        loaded = load_resources([{**raw, "spec": case["spec"]}])
        for resource in loaded.resources:
            back = from_normal(json.loads(json.dumps(to_normal(resource))))
            assert back.spec == resource.spec, case["case"]
            checked += 1
    assert checked >= 30


def test_the_dry_run_annotation_reaches_the_proxy_and_nothing_else() -> None:
    raw = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "a", "namespace": "foo", "labels": {"x": "y"},
                     "annotations": {"istio.io/dry-run": "true", "note": "private"}},
        "spec": {"action": "DENY", "rules": [{}]},
    }  # fmt: skip
    (resource,) = load_resources([raw]).resources
    normal = to_normal(resource)
    assert normal["metadata"] == {
        "name": "a", "namespace": "foo", "annotations": {"istio.io/dry-run": "true"},
    }  # fmt: skip
    from mesh.security.authz import is_dry_run

    assert is_dry_run(from_normal(json.loads(json.dumps(normal))))
