"""AuthorizationPolicy validation, as Istio validates it, and the lab's own findings.

The first table is Istio's own ``TestValidateAuthorizationPolicy`` of istio/istio
``pkg/config/validation/validation_test.go`` at commit 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c,
each Go case rewritten as the YAML a user writes, with Istio's verdicts: valid (no Istio error,
``IST0106``) and warning (an Istio warning, ``IST0133``). The lab's own refusals (``MSH0002``:
CUSTOM) are asserted apart.
"""

from __future__ import annotations

import pytest

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.loader import load_text
from tests.helpers import istio_check, istio_verdict, security_doc

AP = "AuthorizationPolicy"
PA = "PeerAuthentication"
HTTPBIN_V1 = "selector:\n  matchLabels: {app: httpbin, version: v1}\n"
HTTPBIN = "selector:\n  matchLabels: {app: httpbin}\n"
GATEWAY_REF = "{group: gateway.networking.k8s.io, kind: Gateway, name: foo}"
DENY_PRINCIPAL_PORT = """
action: DENY
rules:
- from:
  - source: {principals: [temp]}
  to:
  - operation: {ports: ["8080"], methods: [GET, DELETE]}
"""


# (name, annotations, spec, valid, warning) — Istio's TestValidateAuthorizationPolicy.
AUTHORIZATION_POLICY_CASES = [
    (
        "good",
        None,
        HTTPBIN_V1
        + """
rules:
- from:
  - source: {principals: [sa1]}
  - source: {principals: [sa2]}
  to:
  - operation: {methods: [GET]}
  - operation: {methods: [POST]}
  when:
  - key: source.ip
    values: [1.2.3.4, 5.6.7.0/24]
  - key: "request.headers[:authority]"
    values: [v1, v2]
""",
        True,
        False,
    ),
    (
        "good serviceAccounts",
        None,
        HTTPBIN_V1
        + """
rules:
- from:
  - source: {serviceAccounts: [ns1/sa1, ns2/sa2]}
  - source: {principals: [sa2]}
""",
        True,
        False,
    ),
    (
        "serviceAccounts and namespaces",
        None,
        HTTPBIN_V1
        + "rules:\n- from:\n  - source: {serviceAccounts: [ns1/sa1, ns2/sa2], namespaces: [ns]}\n",
        False,
        False,
    ),
    (
        "custom-good",
        None,
        "action: CUSTOM\nprovider: {name: my-custom-authz}\nrules: [{}]\n",
        True,
        False,
    ),
    (
        "custom-empty-provider",
        None,
        'action: CUSTOM\nprovider: {name: ""}\nrules: [{}]\n',
        False,
        False,
    ),
    ("custom-nil-provider", None, "action: CUSTOM\nrules: [{}]\n", False, False),
    (
        "custom-invalid-rule",
        None,
        """
action: CUSTOM
provider: {name: my-custom-authz}
rules:
- from:
  - source:
      namespaces: [ns]
      notNamespaces: [ns]
      principals: [id]
      notPrincipals: [id]
      requestPrincipals: [req]
      notRequestPrincipals: [req]
  when:
  - {key: source.namespace, values: [source.namespace1], notValues: [source.namespace2]}
  - {key: source.principal, values: [source.principal1], notValues: [source.principal2]}
  - {key: "request.auth.claims[a]", values: [claims1], notValues: [claims2]}
""",
        False,
        False,
    ),
    (
        "provider-wrong-action",
        None,
        'action: ALLOW\nprovider: {name: ""}\nrules: [{}]\n',
        False,
        False,
    ),
    ("allow-rules-nil", None, "action: ALLOW\n", True, False),
    ("dry-run-valid-allow", {"istio.io/dry-run": "true"}, "action: ALLOW\n", True, False),
    (
        "dry-run-valid-deny",
        {"istio.io/dry-run": "false"},
        "action: DENY\nrules: [{}]\n",
        True,
        False,
    ),
    ("dry-run-invalid-value", {"istio.io/dry-run": "foo"}, "action: ALLOW\n", False, False),
    (
        "dry-run-invalid-action-custom",
        {"istio.io/dry-run": "true"},
        "action: CUSTOM\n",
        False,
        False,
    ),
    ("dry-run-invalid-action-audit", {"istio.io/dry-run": "true"}, "action: AUDIT\n", False, False),
    ("deny-rules-nil", None, "action: DENY\n", False, False),
    (
        "selector-empty-value",
        None,
        'selector:\n  matchLabels: {app: "", version: v1}\n',
        True,
        False,
    ),
    (
        "selector-empty-key",
        None,
        'selector:\n  matchLabels: {app: httpbin, "": v1}\n',
        False,
        False,
    ),
    ("selector-empty-labels", None, "selector: {}\n", True, True),
    (
        "selector-wildcard-value",
        None,
        'selector:\n  matchLabels: {app: "httpbin-*"}\n',
        False,
        False,
    ),
    ("selector-wildcard-key", None, 'selector:\n  matchLabels: {"app-*": httpbin}\n', False, False),
    ("target-ref-good", None, f"targetRef: {GATEWAY_REF}\n" + DENY_PRINCIPAL_PORT, True, False),
    ("target-refs-good", None, f"targetRefs: [{GATEWAY_REF}]\n" + DENY_PRINCIPAL_PORT, True, False),
    (
        "target-refs-good-service",
        None,
        'targetRefs: [{group: "", kind: Service, name: foo}]\n' + DENY_PRINCIPAL_PORT,
        True,
        False,
    ),
    (
        "target-ref-non-empty-namespace",
        None,
        "targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: foo, namespace: bar}\n"
        + DENY_PRINCIPAL_PORT,
        False,
        False,
    ),
    (
        "target-ref-empty-name",
        None,
        "targetRef: {group: gateway.networking.k8s.io, kind: Gateway}\n" + DENY_PRINCIPAL_PORT,
        False,
        False,
    ),
    (
        "target-ref-wrong-group",
        None,
        "targetRef: {group: wrong-group, kind: Gateway, name: foo}\n" + DENY_PRINCIPAL_PORT,
        False,
        False,
    ),
    (
        "target-ref-wrong-kind",
        None,
        "targetRef: {group: gateway.networking.k8s.io, kind: wrong-kind, name: foo}\n"
        + DENY_PRINCIPAL_PORT,
        False,
        False,
    ),
    (
        "target-ref-and-selector-cannot-both-be-set",
        None,
        f"targetRef: {GATEWAY_REF}\n" + HTTPBIN + DENY_PRINCIPAL_PORT,
        False,
        False,
    ),
    (
        "target-refs-and-selector-cannot-both-be-set",
        None,
        f"targetRefs: [{GATEWAY_REF}]\n" + HTTPBIN + DENY_PRINCIPAL_PORT,
        False,
        False,
    ),
    ("from-empty", None, "rules:\n- from: []\n", False, False),
    ("source-nil", None, "rules:\n- from:\n  - {}\n", False, False),
    ("source-empty", None, "rules:\n- from:\n  - source: {}\n", False, False),
    ("to-empty", None, "rules:\n- to: []\n", False, False),
    ("operation-nil", None, "rules:\n- to:\n  - {}\n", False, False),
    ("operation-empty", None, "rules:\n- to:\n  - operation: {}\n", False, False),
    *[
        (
            f"{field[0].upper()}{field[1:]}-empty",
            None,
            f'rules:\n- from:\n  - source: {{{field}: [{good}, ""]}}\n',
            False,
            False,
        )
        for field, good in (
            ("principals", "p1"),
            ("notPrincipals", "p1"),
            ("requestPrincipals", "p1"),
            ("notRequestPrincipals", "p1"),
            ("namespaces", "ns"),
            ("serviceAccounts", "ns/sa"),
            ("notNamespaces", "ns"),
            ("ipBlocks", "1.2.3.4"),
            ("notIpBlocks", "1.2.3.4"),
            ("remoteIpBlocks", "1.2.3.4"),
            ("notRemoteIpBlocks", "1.2.3.4"),
        )
    ],
    *[
        (
            f"{field[0].upper()}{field[1:]}-empty",
            None,
            f'rules:\n- to:\n  - operation: {{{field}: ["{good}", ""]}}\n',
            False,
            False,
        )
        for field, good in (
            ("hosts", "host"),
            ("notHosts", "host"),
            ("ports", "80"),
            ("notPorts", "80"),
            ("methods", "GET"),
            ("notMethods", "GET"),
            ("paths", "/path"),
            ("notPaths", "/path"),
        )
    ],
    (
        "value-empty",
        None,
        'rules:\n- when:\n  - {key: "request.headers[:authority]", values: [v1, ""]}\n',
        False,
        False,
    ),
    (
        "invalid ip and port in ipBlocks",
        None,
        """
rules:
- from:
  - source: {ipBlocks: [1.2.3.4, ip1], notIpBlocks: [5.6.7.8, ip2]}
  to:
  - operation: {ports: ["80", port1], notPorts: ["90", port2]}
""",
        False,
        False,
    ),
    (
        "invalid ip and port in remoteIpBlocks",
        None,
        """
rules:
- from:
  - source: {remoteIpBlocks: [1.2.3.4, ip1], notRemoteIpBlocks: [5.6.7.8, ip2]}
  to:
  - operation: {ports: ["80", port1], notPorts: ["90", port2]}
""",
        False,
        False,
    ),
    (
        "condition-key-missing",
        None,
        HTTPBIN + "rules:\n- when:\n  - values: [v1, v2]\n",
        False,
        False,
    ),
    (
        "condition-key-empty",
        None,
        HTTPBIN + 'rules:\n- when:\n  - {key: "", values: [v1, v2]}\n',
        False,
        False,
    ),
    (
        "condition-value-missing",
        None,
        HTTPBIN + "rules:\n- when:\n  - key: source.principal\n",
        False,
        False,
    ),
    (
        "condition-value-invalid",
        None,
        "rules:\n- when:\n  - {key: source.ip, values: [a.b.c.d]}\n",
        False,
        False,
    ),
    (
        "condition-notValue-invalid",
        None,
        "rules:\n- when:\n  - {key: source.ip, notValues: [a.b.c.d]}\n",
        False,
        False,
    ),
    (
        "condition-unknown",
        None,
        HTTPBIN + "rules:\n- when:\n  - {key: key1, values: [v1]}\n",
        False,
        False,
    ),
    (
        "L7DenyWithFrom",
        None,
        "action: DENY\n"
        + HTTPBIN
        + "rules:\n- from:\n  - source: {requestPrincipals: [example.com/sub-1]}\n",
        True,
        True,
    ),
    (
        "L7DenyWithTo",
        None,
        "action: DENY\n" + HTTPBIN + "rules:\n- to:\n  - operation: {methods: [GET, DELETE]}\n",
        True,
        True,
    ),
    (
        "L7DenyWithFromAndTo",
        None,
        "action: DENY\n"
        + HTTPBIN
        + "rules:\n- from:\n  - source: {principals: [temp]}\n  to:\n  - operation: {methods: [GET, DELETE]}\n",
        True,
        True,
    ),
    ("L7DenyWithFromAndToWithPort", None, HTTPBIN + DENY_PRINCIPAL_PORT, True, False),
]


@pytest.mark.parametrize(
    ("annotations", "spec", "valid", "warning"),
    [case[1:] for case in AUTHORIZATION_POLICY_CASES],
    ids=[case[0] for case in AUTHORIZATION_POLICY_CASES],
)
def test_istio_authorization_policy_table(
    annotations: dict[str, str] | None, spec: str, valid: bool, warning: bool
) -> None:
    found = istio_check(security_doc(AP, "name", spec, "namespace", annotations))
    assert istio_verdict(found) == (valid, warning), [str(i) for i in found]


# ---------------------------------------------------------------- the lab's own findings


def lines(found: list[Issue]) -> list[str]:
    return [f"{i.severity} {i.code} {i.file}:{i.line} {i.path}: {i.message}" for i in found]


def test_custom_is_refused_with_a_lab_error_even_when_istio_accepts_it() -> None:
    found = istio_check(
        security_doc(AP, "ext-authz", "action: CUSTOM\nprovider: {name: my-authz}\nrules: [{}]\n")
    )
    refused = [i for i in found if i.code == codes.NOT_SUPPORTED and i.is_error]
    assert [(i.path, i.line) for i in refused] == [("action", 7)]
    assert "CUSTOM" in refused[0].message and "ALLOW or DENY" in refused[0].message


def test_errors_point_at_the_field_with_file_line_and_path() -> None:
    text = security_doc(
        AP,
        "bad",
        """
        rules:
        - from:
          - source:
              principals: [cluster.local/ns/default/sa/sleep]
              ipBlocks: [10.0.0.0/8, 300.1.2.3]
          to:
          - operation:
              ports: ["80", "http"]
              paths: ["/api/{**}/x/{*}"]
        """,
    )
    found = [i for i in istio_check(text) if i.is_error]
    assert lines(found) == [
        "Error IST0106 test.yaml:11 rules[0].from[0].source.ipBlocks[1]: bad IP address "
        "(300.1.2.3): '300.1.2.3' does not appear to be an IPv4 or IPv6 address",
        "Error IST0106 test.yaml:14 rules[0].to[0].operation.ports[1]: bad port (http): must be "
        "0..65535",
        "Error IST0106 test.yaml:15 rules[0].to[0].operation.paths[0]: invalid path template "
        "/api/{**}/x/{*}: {**} is not the last operator, found in paths",
    ]


def test_unknown_fields_get_did_you_mean_like_every_kind() -> None:
    text = security_doc(
        AP,
        "typo",
        "rules:\n- from:\n  - source: {principal: [x]}\n  to:\n  - operation: {method: [GET]}\n",
    )
    loaded = load_text(text, "test.yaml")
    assert lines(loaded.issues) == [
        "Error IST0106 test.yaml:9 rules[0].from[0].source.principal: unknown field "
        "'principal' (did you mean \"principals\"?)",
        "Error IST0106 test.yaml:11 rules[0].to[0].operation.method: unknown field 'method' "
        '(did you mean "methods"?)',
    ]
    text = security_doc(PA, "default", "mtls: {mode: STRCT}\n")
    assert [str(i) for i in load_text(text, "t.yaml").issues] == [
        "Error [IST0106] (PeerAuthentication default/default t.yaml:7) mtls.mode: 'STRCT' is not one of UNSET, "
        'DISABLE, PERMISSIVE, STRICT (did you mean "STRICT"?)'
    ]


def test_dry_run_annotation_on_another_kind_is_an_error_at_its_line() -> None:
    text = security_doc(
        PA, "default", "mtls: {mode: STRICT}\n", "foo", {"istio.io/dry-run": "true"}
    )
    found = [i for i in istio_check(text) if i.is_error]
    assert lines(found) == [
        "Error IST0106 test.yaml:7 metadata.annotations.istio.io/dry-run: PeerAuthentication "
        "does not support the annotation istio.io/dry-run: remove it (only "
        "AuthorizationPolicy can be dry-run)"
    ]


def test_a_valid_policy_from_istio_docs_has_no_error() -> None:
    text = security_doc(
        AP,
        "httpbin",
        """
        action: ALLOW
        rules:
        - from:
          - source:
              principals: ["cluster.local/ns/default/sa/sleep"]
          - source:
              namespaces: ["test"]
          to:
          - operation:
              methods: ["GET"]
              paths: ["/info*"]
          - operation:
              methods: ["POST"]
              paths: ["/data"]
          when:
          - key: request.auth.claims[iss]
            values: ["https://accounts.google.com"]
        """,
        "foo",
    )
    assert [i for i in istio_check(text) if i.is_error] == []
