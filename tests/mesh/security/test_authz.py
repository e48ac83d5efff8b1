"""AuthorizationPolicy evaluation: istio.io's authz-http task step by step, then the semantics
(order of actions, empty policies, notX, ``when`` keys, string matching, IP blocks, dry-run)."""

from __future__ import annotations

import pytest

from mesh.config.loader import load_text
from mesh.security.authz import (
    DENIED_BODY,
    AuthorizationPolicies,
    CompiledPolicy,
    Decision,
    RequestFacts,
    UnsupportedAttribute,
    compile_policy,
    evaluate,
)
from mesh.topology import Pod
from tests.helpers import docs, security_doc

AP = "AuthorizationPolicy"
PRODUCTPAGE_SA = "cluster.local/ns/default/sa/bookinfo-productpage"
REVIEWS_SA = "cluster.local/ns/default/sa/bookinfo-reviews"
GATEWAY_SA = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"


def bookinfo(service: str) -> Pod:
    return Pod(
        f"{service}-v1",
        {"app": service, "version": "v1"},
        "default",
        service_account=f"bookinfo-{service}",
    )


PAGE_HOPS = {
    # hop: (server, request facts as the server's sidecar sees them)
    "gateway -> productpage": (
        bookinfo("productpage"),
        RequestFacts("GET", "/productpage", "bookinfo.example", source_principal=GATEWAY_SA),
    ),
    "productpage -> details": (
        bookinfo("details"),
        RequestFacts("GET", "/details/0", "details:9080", source_principal=PRODUCTPAGE_SA),
    ),
    "productpage -> reviews": (
        bookinfo("reviews"),
        RequestFacts("GET", "/reviews/0", "reviews:9080", source_principal=PRODUCTPAGE_SA),
    ),
    "reviews -> ratings": (
        bookinfo("ratings"),
        RequestFacts("GET", "/ratings/0", "ratings:9080", source_principal=REVIEWS_SA),
    ),
}


def decide(config: str, server: Pod, facts: RequestFacts) -> Decision:
    loaded = load_text(config, "authz.yaml")
    assert loaded.ok, [str(i) for i in loaded.issues]
    return evaluate(AuthorizationPolicies(loaded.resources).for_workload(server), facts)


def page(config: str) -> str:
    """What the product page shows, as the task describes it at each step."""
    allowed = {hop: decide(config, *PAGE_HOPS[hop]).allowed for hop in PAGE_HOPS}
    if not allowed["gateway -> productpage"]:
        return DENIED_BODY
    shown = [
        "product details" if allowed["productpage -> details"] else "Error fetching product details"
    ]
    if not allowed["productpage -> reviews"]:
        shown.append("Error fetching product reviews")
    elif not allowed["reviews -> ratings"]:
        shown.append("reviews, Ratings service is currently unavailable")
    else:
        shown.append("reviews with ratings")
    return "; ".join(shown)


ALLOW_NOTHING = security_doc(AP, "allow-nothing", "{}")
PRODUCTPAGE_VIEWER = security_doc(
    AP,
    "productpage-viewer",
    """
    selector:
      matchLabels: {app: productpage}
    action: ALLOW
    rules:
    - to:
      - operation:
          methods: ["GET"]
    """,
)


def viewer(service: str, principal: str) -> str:
    return security_doc(
        AP,
        f"{service}-viewer",
        f"""
        selector:
          matchLabels: {{app: {service}}}
        action: ALLOW
        rules:
        - from:
          - source:
              principals: ["{principal}"]
          to:
          - operation:
              methods: ["GET"]
        """,
    )


STEPS = [
    ("allow-nothing", (ALLOW_NOTHING,), "RBAC: access denied"),
    (
        "productpage-viewer",
        (ALLOW_NOTHING, PRODUCTPAGE_VIEWER),
        "Error fetching product details; Error fetching product reviews",
    ),
    (
        "details-viewer",
        (ALLOW_NOTHING, PRODUCTPAGE_VIEWER, viewer("details", PRODUCTPAGE_SA)),
        "product details; Error fetching product reviews",
    ),
    (
        "reviews-viewer",
        (
            ALLOW_NOTHING,
            PRODUCTPAGE_VIEWER,
            viewer("details", PRODUCTPAGE_SA),
            viewer("reviews", PRODUCTPAGE_SA),
        ),
        "product details; reviews, Ratings service is currently unavailable",
    ),
    (
        "ratings-viewer",
        (
            ALLOW_NOTHING,
            PRODUCTPAGE_VIEWER,
            viewer("details", PRODUCTPAGE_SA),
            viewer("reviews", PRODUCTPAGE_SA),
            viewer("ratings", REVIEWS_SA),
        ),
        "product details; reviews with ratings",
    ),
    ("clean up", (), "product details; reviews with ratings"),
]


@pytest.mark.parametrize(("config", "shown"), [s[1:] for s in STEPS], ids=[s[0] for s in STEPS])
def test_authz_http_task_step_by_step(config: tuple[str, ...], shown: str) -> None:
    assert page(docs(*config) if config else "") == shown


def test_a_denial_is_envoys_403_without_a_response_flag() -> None:
    decision = decide(ALLOW_NOTHING, *PAGE_HOPS["gateway -> productpage"])
    assert (decision.allowed, decision.status, decision.body) == (False, 403, "RBAC: access denied")
    assert decision.stage == "ALLOW"
    assert decision.response_code_details == "rbac_access_denied_matched_policy[none]"


# ---------------------------------------------------------------- semantics


def policy(spec: str, namespace: str = "foo", name: str = "p", **meta: str) -> CompiledPolicy:
    loaded = load_text(security_doc(AP, name, spec, namespace, meta or None), "p.yaml")
    assert loaded.ok, [str(i) for i in loaded.issues]
    return compile_policy(loaded.resources[0])


SLEEP_FOO = "cluster.local/ns/foo/sa/sleep"
GET = RequestFacts(
    "GET",
    "/headers?show=1",
    "httpbin.foo:8000",
    {"x-token": "admin", "user-agent": "curl/8.0"},
    source_principal=SLEEP_FOO,
    source_ip="10.1.2.3",
    destination_ip="10.9.0.7",
    destination_port=8080,
)


def outcome(*policies: CompiledPolicy, facts: RequestFacts = GET) -> tuple[bool, str]:
    decision = evaluate(policies, facts)
    return decision.allowed, decision.stage


def test_order_deny_before_allow_and_no_allow_policy_allows() -> None:
    allow_all = policy("rules: [{}]", name="allow-all")
    deny_get = policy("action: DENY\nrules:\n- to:\n  - operation: {methods: [GET]}", name="deny")
    assert outcome() == (True, "NONE")
    assert outcome(allow_all) == (True, "ALLOW")
    assert outcome(allow_all, deny_get) == (False, "DENY")
    assert evaluate([allow_all, deny_get], GET).policy == "ns[foo]-policy[deny]-rule[0]"
    assert outcome(policy("action: DENY\nrules:\n- to:\n  - operation: {methods: [POST]}")) == (
        True,
        "NONE",
    )


def test_spec_empty_denies_everything_and_rules_of_one_empty_rule_allows_everything() -> None:
    assert outcome(policy("{}")) == (False, "ALLOW")
    assert outcome(policy("rules: [{}]")) == (True, "ALLOW")
    plaintext = RequestFacts("POST", "/anything")
    assert outcome(policy("rules: [{}]"), facts=plaintext) == (True, "ALLOW")


def test_custom_denies_matching_requests_first_as_istio_does_without_a_provider() -> None:
    custom = CompiledPolicy(
        "foo", "ext", "CUSTOM", policy("rules: [{}]").rules, provider="my-authz"
    )
    decision = evaluate([policy("rules: [{}]"), custom], GET)
    assert (decision.allowed, decision.stage) == (False, "CUSTOM")
    assert decision.policy == (
        "istio-ext-authz-my-authz-ns[foo]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action"
    )


def test_audit_marks_without_deciding() -> None:
    audit = policy("action: AUDIT\nrules:\n- to:\n  - operation: {paths: [/headers]}", name="a")
    decision = evaluate([audit], GET)
    assert (decision.allowed, decision.audited, decision.audit_policy) == (
        True,
        True,
        "ns[foo]-policy[a]-rule[0]",
    )
    assert evaluate([audit], RequestFacts(path="/ip")).audited is False


def test_dry_run_is_evaluated_and_reported_but_not_enforced() -> None:
    """istio.io's authz-dry-run task: a DENY on /headers in dry-run lets the request through
    and reports the shadow denial with its policy."""
    dry = policy(
        "action: DENY\nrules:\n- to:\n  - operation: {paths: [/headers]}",
        name="deny-path-headers",
        **{"istio.io/dry-run": "true"},
    )
    decision = evaluate([dry], GET)
    assert decision.allowed and decision.stage == "NONE"
    (shadow,) = decision.dry_run
    assert (shadow.action, shadow.engine_result, shadow.policy) == (
        "DENY",
        "denied",
        "ns[foo]-policy[deny-path-headers]-rule[0]",
    )
    allow_dry = policy("{}", name="dry-allow", **{"istio.io/dry-run": "true"})
    decision = evaluate([allow_dry], GET)
    assert decision.allowed and [r.engine_result for r in decision.dry_run] == ["denied"]


@pytest.mark.parametrize(
    ("source", "facts", "matches"),
    [
        ("principals: [cluster.local/ns/foo/sa/sleep]", GET, True),
        ("principals: [cluster.local/ns/foo/*]", GET, True),
        ("principals: ['*/sa/sleep']", GET, True),
        ("principals: ['*']", GET, True),
        ("principals: ['*']", RequestFacts(), False),  # plaintext: no peer identity
        ("notPrincipals: ['*']", RequestFacts(), True),
        ("namespaces: [foo]", GET, True),
        ("namespaces: ['f*']", GET, True),
        ("namespaces: [bar]", GET, False),
        ("namespaces: [foo]", RequestFacts(), False),
        ("notNamespaces: [foo]", GET, False),
        ("serviceAccounts: [sleep]", GET, True),  # in the policy's namespace, foo
        ("serviceAccounts: [bar/sleep]", GET, False),
        ("trustDomains: [cluster.local]", GET, True),
        ("trustDomains: ['*.local']", GET, True),
        ("ipBlocks: [10.1.0.0/16]", GET, True),
        ("ipBlocks: [10.1.2.3]", GET, True),
        ("notIpBlocks: [10.0.0.0/8]", GET, False),
        ("remoteIpBlocks: [10.1.2.0/24]", GET, True),
        ("requestPrincipals: ['*']", GET, False),  # no JWT in the lab
        ("notRequestPrincipals: ['*']", GET, True),
        # fields AND, values OR
        (
            "principals: [x, cluster.local/ns/foo/sa/sleep]\n      ipBlocks: [192.168.0.0/16]",
            GET,
            False,
        ),
    ],
)
def test_source_matching(source: str, facts: RequestFacts, matches: bool) -> None:
    allow = policy(f"rules:\n- from:\n  - source:\n      {source}")
    assert evaluate([allow], facts).allowed is matches


@pytest.mark.parametrize(
    ("operation", "matches"),
    [
        ("methods: [GET, HEAD]", True),
        ("notMethods: [GET]", False),
        ("paths: [/headers]", True),  # the query string is not part of the path
        ("paths: ['/head*']", True),
        ("paths: ['*ers']", True),
        ("paths: ['*']", True),
        ("paths: ['/{*}']", True),
        ("paths: ['/api/{**}']", False),
        ("notPaths: ['/admin*']", True),
        ("hosts: [HTTPBIN.FOO:8000]", True),  # case-insensitive
        ("hosts: ['*.foo:8000']", True),
        ("hosts: [httpbin.foo]", False),  # the Host header is matched as sent, port included
        ("ports: ['8080']", True),
        ("notPorts: ['8080']", False),
        ("methods: [GET]\n        ports: ['9000']", False),
    ],
)
def test_operation_matching(operation: str, matches: bool) -> None:
    allow = policy(f"rules:\n- to:\n  - operation:\n        {operation}")
    assert evaluate([allow], GET).allowed is matches


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ("{key: 'request.headers[x-token]', values: [admin]}", True),
        ("{key: 'request.headers[X-Token]', values: ['adm*']}", True),
        ("{key: 'request.headers[x-token]', notValues: [admin]}", False),
        ("{key: 'request.headers[x-missing]', values: ['*']}", False),
        ("{key: 'request.headers[x-token]', values: ['*']}", True),
        ("{key: 'request.headers[:authority]', values: ['httpbin.foo*']}", True),
        ("{key: source.ip, values: [10.1.2.0/24]}", True),
        ("{key: remote.ip, values: [10.1.2.3]}", True),
        ("{key: source.namespace, values: [foo]}", True),
        ("{key: source.principal, values: [cluster.local/ns/foo/sa/sleep]}", True),
        ("{key: source.serviceAccount, values: [foo/sleep]}", True),
        ("{key: source.trustDomain, notValues: [cluster.local]}", False),
        ("{key: destination.ip, values: [10.9.0.0/16]}", True),
        ("{key: destination.port, values: ['8080']}", True),
        ("{key: connection.sni, values: ['*']}", False),  # plaintext in this request: no SNI
        ("{key: 'request.auth.claims[iss]', values: [https://accounts.google.com]}", False),
        ("{key: request.auth.principal, notValues: ['*']}", True),
    ],
)
def test_when_conditions(condition: str, matches: bool) -> None:
    allow = policy(f"rules:\n- when:\n  - {condition}")
    assert evaluate([allow], GET).allowed is matches


def test_envoy_filter_metadata_is_refused() -> None:
    loaded = load_text(
        security_doc(
            AP,
            "p",
            "rules:\n- when:\n  - {key: 'experimental.envoy.filters.a.b[c]', values: [x]}",
        ),
        "p.yaml",
    )
    with pytest.raises(UnsupportedAttribute, match="not available in the lab"):
        compile_policy(loaded.resources[0])


def test_policies_apply_by_namespace_selector_and_root_and_not_by_target_ref() -> None:
    loaded = load_text(
        docs(
            security_doc(AP, "mesh-wide", "{}", "istio-system"),
            security_doc(AP, "foo-httpbin", "selector:\n  matchLabels: {app: httpbin}", "foo"),
            security_doc(AP, "bar-all", "{}", "bar"),
            security_doc(
                AP,
                "gateway-only",
                "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
                "action: DENY\nrules: [{}]",
                "foo",
            ),
        ),
        "p.yaml",
    )
    index = AuthorizationPolicies(loaded.resources)
    names = {
        pod.name: [p.name for p in index.for_workload(pod)]
        for pod in (
            Pod("httpbin-foo", {"app": "httpbin"}, "foo"),
            Pod("sleep-foo", {"app": "sleep"}, "foo"),
            Pod("httpbin-bar", {"app": "httpbin"}, "bar"),
            Pod("legacy", {"app": "httpbin"}, "foo", proxy="none"),
        )
    }
    assert names == {
        "httpbin-foo": ["mesh-wide", "foo-httpbin"],
        "sleep-foo": ["mesh-wide"],
        "httpbin-bar": ["mesh-wide", "bar-all"],
        "legacy": [],  # no proxy: nothing enforces policy there
    }
