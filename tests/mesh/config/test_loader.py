"""The loader: documents, kinds, schema errors with their lines, and hostile input."""

from __future__ import annotations

import pytest

from mesh.config.loader import MAX_DOCUMENTS, later_files_win, load_resources, load_text
from mesh.config.model import (
    AuthorizationPolicy,
    Condition,
    DestinationRule,
    MutualTLS,
    PeerAuthentication,
    Rule,
    StringMatch,
    VirtualService,
    WorkloadSelector,
)
from mesh.config.resource import LoadResult
from tests.helpers import doc, docs, load, security_doc


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_every_istio_api_version_loads(version: str) -> None:
    text = doc(
        "VirtualService",
        "reviews",
        "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}",
    )
    text = text.replace("v1beta1", version)
    result = load(text)
    assert result.ok and len(result.resources) == 1
    assert result.resources[0].api_version == f"networking.istio.io/{version}"


def test_spec_becomes_frozen_typed_objects() -> None:
    result = load(
        doc(
            "VirtualService",
            "reviews",
            """
        hosts: [reviews]
        http:
        - match:
          - headers: {end-user: {exact: tester}}
          fault:
            delay: {fixedDelay: 2.5s, percentage: {value: 100}}
          route:
          - destination: {host: reviews, subset: v2}
            weight: 70
        - route:
          - destination: {host: reviews, subset: v1}
    """,
        )
    )
    vs = result.resources[0].spec
    assert isinstance(vs, VirtualService)
    rule = vs.http[0]
    assert rule.match[0].headers["end-user"] == StringMatch("exact", "tester")
    assert rule.fault.delay.fixed_delay == 2.5
    assert rule.fault.delay.percentage.value == 100.0
    assert rule.route[0].weight == 70
    with pytest.raises(AttributeError):
        vs.hosts = ()  # type: ignore[misc]


def test_outlier_fields_map_from_camel_case() -> None:
    result = load(
        doc(
            "DestinationRule",
            "details",
            """
        host: details
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 3, interval: 1m, baseEjectionTime: 5m, maxEjectionPercent: 100}
          connectionPool: {http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}, tcp: {maxConnections: 1}}
    """,
        )
    )
    dr = result.resources[0].spec
    assert isinstance(dr, DestinationRule)
    outlier = dr.traffic_policy.outlier_detection
    assert (outlier.consecutive_5xx_errors, outlier.interval, outlier.base_ejection_time) == (
        3,
        60.0,
        300.0,
    )
    assert dr.traffic_policy.connection_pool.http.http1_max_pending_requests == 1


def test_other_kinds_are_skipped_with_an_info_line() -> None:
    text = docs(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews-v1}\nspec: {}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec: {}\n",
        doc(
            "VirtualService",
            "reviews",
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}",
        ),
    )
    result = load(text)
    assert result.ok
    assert [r.kind for r in result.resources] == ["VirtualService"]
    assert [(i.severity, i.kind) for i in result.issues] == [
        ("Info", "Deployment"),
        ("Info", "Service"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [", "invalid YAML at line "),
        ("a: b\n  c: d\n", "invalid YAML at line 2 column 4: mapping values are not allowed"),
        ("- just\n- a list\n", "is a list, not a mapping"),
        ("kind: VirtualService\n", "missing apiVersion"),
        ("apiVersion: networking.istio.io/v1\nmetadata: {name: x}\n", "missing kind"),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualSerivce\nmetadata: {name: x}\nspec: {}\n",
            "unknown kind 'VirtualSerivce' (did you mean \"VirtualService\"?)",
        ),
        (
            "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: [a]}\n",
            "unknown apiVersion",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: {hosts: [a]}\n",
            "missing metadata.name",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: Bad_Name}\nspec: {hosts: [a]}\n",
            "not a valid DNS-1123 name",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n",
            "missing spec",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: [1]\n",
            "spec must be a mapping",
        ),
    ],
    ids=[
        "yaml-syntax",
        "yaml-indent",
        "not-a-mapping",
        "no-apiversion",
        "no-kind",
        "kind-typo",
        "bad-version",
        "no-name",
        "bad-name",
        "no-spec",
        "spec-list",
    ],
)
def test_bad_documents_get_a_clear_error(text: str, expected: str) -> None:
    result = load(text)
    assert not result.ok
    messages = [i.message for i in result.issues if i.is_error]
    assert any(expected in m for m in messages), messages


@pytest.mark.parametrize(
    ("spec", "path", "expected"),
    [
        (
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}\n    wieght: 5",
            "http[0].route[0].wieght",
            "unknown field 'wieght' (did you mean \"weight\"?)",
        ),
        ("hostz: [reviews]", "hostz", 'did you mean "hosts"?'),
        ("hosts: reviews", "hosts", "must be a list, not string"),
        (
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}\n    weight: seventy",
            "http[0].route[0].weight",
            "must be an integer",
        ),
        (
            "hosts: [reviews]\nhttp:\n- timeout: 2.5\n  route:\n  - destination: {host: reviews}",
            "http[0].timeout",
            "has no unit",
        ),
        (
            "hosts: [reviews]\nhttp:\n- timeout: -1s\n  route:\n  - destination: {host: reviews}",
            "http[0].timeout",
            "negative",
        ),
        (
            "hosts: [reviews]\nhttp:\n- timeout: soon\n  route:\n  - destination: {host: reviews}",
            "http[0].timeout",
            "is not a duration",
        ),
        (
            "hosts: [reviews]\nhttp:\n- match:\n  - headers: {end-user: {exact: a, prefix: b}}\n  route:\n  - destination: {host: reviews}",
            "http[0].match[0].headers.end-user",
            "only one of exact, prefix, regex",
        ),
        (
            "hosts: [reviews]\nhttp:\n- match:\n  - headers: {end-user: {exactly: a}}\n  route:\n  - destination: {host: reviews}",
            "http[0].match[0].headers.end-user.exactly",
            'did you mean "exact"?',
        ),
        ("hosts: [reviews]\nhosts: [ratings]", "hosts", "duplicate key"),
    ],
    ids=[
        "typo-weight",
        "typo-hosts",
        "wrong-type-list",
        "wrong-type-int",
        "duration-no-unit",
        "duration-negative",
        "duration-garbage",
        "two-match-kinds",
        "typo-exact",
        "duplicate-key",
    ],
)
def test_schema_errors_name_the_field_and_line(spec: str, path: str, expected: str) -> None:
    result = load(doc("VirtualService", "reviews", spec))
    errors = [i for i in result.issues if i.is_error]
    assert errors, result.issues
    issue = next((i for i in errors if i.path == path), None)
    assert issue is not None, [str(i) for i in errors]
    assert expected in issue.message
    assert issue.kind == "VirtualService" and issue.file == "test.yaml" and issue.line > 4


def test_issue_prints_istio_style() -> None:
    result = load(
        doc(
            "VirtualService",
            "reviews",
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}\n    wieght: 5",
        )
    )
    (issue,) = result.issues
    assert str(issue) == (
        "Error [IST0106] (VirtualService reviews test.yaml:10) http[0].route[0].wieght: "
        "unknown field 'wieght' (did you mean \"weight\"?)"
    )


def test_oversized_file_is_refused_without_parsing() -> None:
    result = load_text("#" * (1 << 20) + "x", "big.yaml")
    assert [i.code for i in result.issues] == ["MSH0004"]
    assert "1 MiB" in result.issues[0].message


def test_thousands_of_documents_are_refused() -> None:
    result = load_text("---\na: 1\n" * (MAX_DOCUMENTS + 5), "many.yaml")
    assert any(i.code == "MSH0004" and "documents" in i.message for i in result.issues)
    assert not result.resources


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    result = load_text(bomb, "bomb.yaml")
    assert any(i.code == "MSH0004" for i in result.issues)


def test_binary_garbage_is_an_error_not_a_crash() -> None:
    result = load_text(b"\xff\xfe\x00garbage", "garbage.yaml")
    assert not result.ok


def test_load_resources_from_plain_mappings() -> None:
    raw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews"},
        "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    }
    result = load_resources([raw])
    assert result.ok and result.resources[0].spec.subsets[0].name == "v1"


# ---------------------------------------------------------------- security.istio.io kinds


@pytest.mark.parametrize("version", ["v1beta1", "v1"])
def test_security_kinds_load_in_their_namespace(version: str) -> None:
    text = security_doc(
        "PeerAuthentication",
        "default",
        "selector:\n  matchLabels: {app: httpbin}\nmtls: {mode: STRICT}\n"
        "portLevelMtls:\n  8080: {mode: DISABLE}\n",
        "foo",
        api_version=f"security.istio.io/{version}",
    )
    loaded = load(text)
    assert loaded.issues == []
    (resource,) = loaded.resources
    assert resource.key == ("PeerAuthentication", "foo", "default")
    assert resource.spec == PeerAuthentication(
        selector=WorkloadSelector({"app": "httpbin"}),
        mtls=MutualTLS("STRICT"),
        port_level_mtls={"8080": MutualTLS("DISABLE")},
    )


def test_authorization_policy_keeps_empty_and_absent_lists_apart() -> None:
    text = security_doc(
        "AuthorizationPolicy",
        "p",
        "rules:\n- from: []\n  when:\n  - {key: source.ip, values: [10.0.0.1]}\n- {}\n",
    )
    (resource,) = load(text).resources
    first, second = resource.spec.rules
    assert first == Rule(from_=(), to=None, when=(Condition("source.ip", ("10.0.0.1",)),))
    assert second == Rule()
    assert load(security_doc("AuthorizationPolicy", "all", "{}")).resources[0].spec == (
        AuthorizationPolicy()
    )


@pytest.mark.parametrize(
    ("api_version", "expected"),
    [
        (
            "networking.istio.io/v1",
            "apiVersion 'networking.istio.io/v1' is not an API version of AuthorizationPolicy "
            "(use security.istio.io/v1 or v1beta1)",
        ),
        (
            "security.istio.io/v1alpha1",
            "unknown apiVersion 'security.istio.io/v1alpha1' (use security.istio.io/v1 or v1beta1)",
        ),
    ],
)
def test_security_kinds_need_their_api_group(api_version: str, expected: str) -> None:
    loaded = load(security_doc("AuthorizationPolicy", "p", "{}", api_version=api_version))
    assert [i.message for i in loaded.issues] == [expected]
    assert loaded.resources == []


def test_a_traffic_kind_in_the_security_group_is_refused() -> None:
    text = doc("VirtualService", "r", "hosts: [r]").replace(
        "networking.istio.io/v1beta1", "security.istio.io/v1"
    )
    assert [i.message for i in load(text).issues] == [
        "apiVersion 'security.istio.io/v1' is not an API version of VirtualService "
        "(use networking.istio.io/v1, v1beta1 or v1alpha3)"
    ]


def test_request_authentication_is_skipped_with_an_info_line() -> None:
    text = security_doc("RequestAuthentication", "jwt", "jwtRules: []")
    loaded = load(text)
    assert [(i.severity, i.message) for i in loaded.issues] == [
        ("Info", "RequestAuthentication is not supported by the lab: skipped")
    ]


def test_bad_namespace_of_a_policy_is_an_error() -> None:
    loaded = load(security_doc("PeerAuthentication", "default", "{}", "Foo_Bar"))
    assert [i.message for i in loaded.issues] == [
        "metadata.namespace 'Foo_Bar' is not a valid namespace name (a DNS-1123 label: "
        "lowercase letters, digits and '-')"
    ]


def test_same_name_in_two_namespaces_are_two_policies() -> None:
    first = docs(
        security_doc("PeerAuthentication", "default", "mtls: {mode: STRICT}", "istio-system"),
        security_doc("PeerAuthentication", "default", "mtls: {mode: PERMISSIVE}", "foo"),
    )
    second = security_doc("PeerAuthentication", "default", "mtls: {mode: DISABLE}", "foo")
    result = LoadResult()
    result.extend(load_text(first, "a.yaml"))
    result.extend(load_text(second, "b.yaml"))
    loaded = later_files_win(result)
    modes = {r.namespace: r.spec.mtls.mode for r in loaded.resources}
    assert modes == {"istio-system": "STRICT", "foo": "DISABLE"}
    assert [i.message for i in loaded.issues] == ["replaces the definition in a.yaml:9"]
