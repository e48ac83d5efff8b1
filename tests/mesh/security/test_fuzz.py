"""Property: for any PeerAuthentication or AuthorizationPolicy document, loading, validation and
the security analysis never crash, and whatever validation accepts the security core can
compile and evaluate (the analyzer and the evaluator agree on what is valid)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.config.loader import load_resources
from mesh.config.validate import analyze
from mesh.security.analysis import analyze_security
from mesh.security.authz import AuthorizationPolicies, RequestFacts, evaluate
from mesh.security.mtls import PeerAuthentications
from mesh.topology import Pod, Topology

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.text(max_size=8),
    st.sampled_from(
        [
            "*",
            "GET",
            "/info*",
            "*.foo",
            "/a/{*}/{**}",
            "/{**}/x",
            "10.0.0.0/8",
            "1.2.3.4",
            "300.1.1.1",
            "8080",
            "cluster.local/ns/foo/sa/sleep",
            "foo/sleep",
            "source.ip",
            "request.headers[x-token]",
            "request.auth.claims[iss]",
            "destination.port",
            "experimental.envoy.filters.a[b]",
            "key1",
            "STRICT",
            "DISABLE",
            "UNSET",
            "ALLOW",
            "DENY",
            "AUDIT",
            "CUSTOM",
            "true",
        ]
    ),
)
keys = st.sampled_from(
    [
        "selector",
        "matchLabels",
        "app",
        "mtls",
        "mode",
        "portLevelMtls",
        "8080",
        "rules",
        "from",
        "to",
        "when",
        "source",
        "operation",
        "principals",
        "notPrincipals",
        "namespaces",
        "ipBlocks",
        "remoteIpBlocks",
        "serviceAccounts",
        "trustDomains",
        "requestPrincipals",
        "methods",
        "paths",
        "notPaths",
        "hosts",
        "ports",
        "key",
        "values",
        "notValues",
        "action",
        "provider",
        "name",
        "targetRef",
        "kind",
        "group",
    ]
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)
# Policies shaped as users write them: per field, values that are mostly valid, one not.
FIELD_VALUES = {
    "principals": ["*", "cluster.local/ns/foo/sa/sleep", "cluster.local/ns/foo/*", "*sleep", ""],
    "namespaces": ["foo", "f*", "*", "bar", ""],
    "ipBlocks": ["10.0.0.0/8", "1.2.3.4", "::1", "300.1.1.1"],
    "serviceAccounts": ["foo/sleep", "sleep", "a/b/c"],
    "trustDomains": ["cluster.local", "*.local", "a*b*"],
    "requestPrincipals": ["*", "iss/sub"],
    "hosts": ["*.foo", "httpbin.foo:8000", "*", ""],
    "ports": ["8080", "9000", "99999"],
    "methods": ["GET", "POST", "*"],
    "paths": ["/info*", "/a/{*}/{**}", "*", "/headers", "/{**}/x"],
}
NEGATED = {f"not{k[0].upper()}{k[1:]}": v for k, v in FIELD_VALUES.items()}
SOURCE_FIELDS = ("principals", "namespaces", "ipBlocks", "serviceAccounts", "trustDomains",
                 "requestPrincipals")  # fmt: skip
OPERATION_FIELDS = ("hosts", "ports", "methods", "paths")


def fields(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, list[str]]]:
    every = {**{n: FIELD_VALUES[n] for n in names}, **{f"not{n[0].upper()}{n[1:]}": NEGATED[
        f"not{n[0].upper()}{n[1:]}"] for n in names}}  # fmt: skip
    return st.sampled_from(sorted(every)).flatmap(
        lambda name: st.fixed_dictionaries(
            {name: st.lists(st.sampled_from(every[name]), min_size=1, max_size=2)}
        )
    )


source = fields(SOURCE_FIELDS)
operation = fields(OPERATION_FIELDS)
strings = st.lists(
    st.sampled_from(["10.1.0.0/16", "8080", "foo", "a", "*", "cluster.local/ns/foo/sa/sleep"]),
    min_size=1,
    max_size=2,
)
condition = st.fixed_dictionaries(
    {"key": st.sampled_from(
        ["source.ip", "remote.ip", "source.namespace", "source.principal", "destination.port",
         "destination.ip", "connection.sni", "request.headers[x-token]", "request.auth.principal",
         "request.auth.claims[iss]", "source.serviceAccount", "source.trustDomain"]
    )},
    optional={"values": strings, "notValues": strings},
)  # fmt: skip
rule = st.fixed_dictionaries(
    {},
    optional={
        "from": st.lists(st.fixed_dictionaries({"source": source}), min_size=1, max_size=2),
        "to": st.lists(st.fixed_dictionaries({"operation": operation}), min_size=1, max_size=2),
        "when": st.lists(condition, max_size=2),
    },
)
policy_spec = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["ALLOW", "DENY", "AUDIT"]),
        "selector": st.fixed_dictionaries({"matchLabels": st.just({"app": "httpbin"})}),
        "rules": st.lists(rule, max_size=3),
    },
)
metadata = st.fixed_dictionaries(
    {"name": st.sampled_from(["default", "p"]), "namespace": st.sampled_from(["foo", "istio-system"])},
    optional={"annotations": st.fixed_dictionaries(
        {"istio.io/dry-run": st.sampled_from(["true", "false", "x"])}
    )},
)  # fmt: skip
any_document = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["security.istio.io/v1", "security.istio.io/v1beta1"]),
        "kind": st.sampled_from(["PeerAuthentication", "AuthorizationPolicy"]),
        "metadata": metadata,
        "spec": st.dictionaries(keys, values, max_size=4),
    }
)
policy_document = st.fixed_dictionaries(
    {
        "apiVersion": st.just("security.istio.io/v1"),
        "kind": st.just("AuthorizationPolicy"),
        "metadata": metadata,
        "spec": policy_spec,
    }
)
documents = st.one_of(any_document, policy_document, policy_document)
PODS = (
    Pod("httpbin", {"app": "httpbin"}, "foo", "httpbin"),
    Pod("legacy", {"app": "sleep"}, "foo", "sleep", proxy="none"),
)
TOPOLOGY = Topology(pods=PODS, namespaces=("foo", "istio-system"))
FACTS = (
    RequestFacts(),
    RequestFacts(
        "POST",
        "/info/x?y",
        "httpbin.foo:8000",
        {"x-token": "a"},
        "cluster.local/ns/foo/sa/sleep",
        "10.1.2.3",
        destination_port=8080,
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, min_size=1, max_size=2))
def test_security_documents_never_crash_and_valid_ones_evaluate(docs: list[dict]) -> None:
    loaded = load_resources(docs)
    issues = loaded.issues + analyze(loaded.resources, TOPOLOGY)
    analyze_security(loaded.resources, TOPOLOGY)
    if any(i.is_error for i in issues):
        return
    policies = AuthorizationPolicies(loaded.resources)
    peer_authns = PeerAuthentications(loaded.resources)
    for pod in PODS:
        peer_authns.for_workload(pod, 8080)
        for facts in FACTS:
            evaluate(policies.for_workload(pod), facts)
