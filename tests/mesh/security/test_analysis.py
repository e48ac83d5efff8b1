"""The security cross-checks, against a topology written as plain values: httpbin and sleep in
foo and bar, and legacy pods without sidecar (istio.io's security task setup)."""

from __future__ import annotations

from mesh.config.loader import load_text
from mesh.security.analysis import analyze_security
from mesh.topology import Service, ServicePort, Topology
from tests.helpers import doc, docs, security_doc, task_pod

AP = "AuthorizationPolicy"
PA = "PeerAuthentication"


TOPOLOGY = Topology(
    services=tuple(
        Service(app, ns, (ServicePort(8000, target_port=8080),))
        for app in ("httpbin", "sleep")
        for ns in ("foo", "bar", "legacy")
    ),
    pods=tuple(
        task_pod(app, ns, ns != "legacy")
        for app in ("httpbin", "sleep")
        for ns in ("foo", "bar", "legacy")
    ),
    namespaces=("default", "istio-system", "foo", "bar", "legacy"),
    service_accounts=tuple(
        (ns, app) for app in ("httpbin", "sleep") for ns in ("foo", "bar", "legacy")
    ),
)


def findings(*documents: str, topology: Topology = TOPOLOGY) -> list[str]:
    loaded = load_text(docs(*documents), "sec.yaml")
    assert loaded.ok, [str(i) for i in loaded.issues]
    return [
        f"{i.severity} {i.code} {i.name} {i.path}: {i.message}"
        for i in analyze_security(loaded.resources, topology)
    ]


def test_clean_config_from_the_tasks_has_no_finding() -> None:
    assert (
        findings(
            security_doc(PA, "default", "mtls: {mode: STRICT}", "istio-system"),
            security_doc(
                AP,
                "httpbin",
                "selector:\n  matchLabels: {app: httpbin}\nrules:\n- from:\n  - source:\n"
                "      principals: [cluster.local/ns/foo/sa/sleep]\n      namespaces: [foo, 'b*']",
                "foo",
            ),
        )
        == []
    )


def test_selectors_that_match_no_workload() -> None:
    assert findings(
        security_doc(
            PA, "nope", "selector:\n  matchLabels: {app: httpbn}\nmtls: {mode: STRICT}", "foo"
        ),
        security_doc(AP, "nope", "selector:\n  matchLabels: {app: httpbin}", "legacy"),
        security_doc(PA, "root", "selector:\n  matchLabels: {app: httpbin}", "istio-system"),
    ) == [
        "Warning IST0127 foo/nope selector: No matching workloads for this resource with the "
        "following labels: app=httpbn (in namespace foo)",
        "Warning IST0127 legacy/nope selector: No matching workloads for this resource with the "
        "following labels: app=httpbin (no workload with a sidecar in namespace legacy)",
        "Warning IST0133 istio-system/root selector: a PeerAuthentication with a workload "
        "selector in the root namespace istio-system is ignored by Istio: put it in the "
        "workloads' namespace",
    ]


def test_unknown_namespaces_and_service_accounts() -> None:
    policy = security_doc(
        AP,
        "p",
        """
        rules:
        - from:
          - source:
              principals: [cluster.local/ns/foo/sa/slep, cluster.local/ns/foo/sa/sleep]
              namespaces: [fooo]
          - source:
              serviceAccounts: [bar/httpbin, nobody]
        """,
        "foo",
    )
    assert findings(policy) == [
        "Warning IST0101 foo/p rules[0].from[0].source.namespaces[0]: Referenced namespace not "
        'found: "fooo" (known: bar, default, foo, istio-system, legacy)',
        "Warning MSH0007 foo/p rules[0].from[0].source.principals[0]: Service Account not found "
        "for this principal: there is no service account slep in namespace foo",
        "Warning MSH0007 foo/p rules[0].from[1].source.serviceAccounts[1]: Service Account not "
        "found: there is no service account nobody in namespace foo",
    ]
    # Without service accounts in the topology (today's course lab may not list them), no guess.
    bare = Topology(pods=TOPOLOGY.pods, namespaces=TOPOLOGY.namespaces)
    assert not [f for f in findings(policy, topology=bare) if "MSH0007" in f]


def test_peer_identity_where_mtls_is_disabled() -> None:
    assert findings(
        security_doc(PA, "default", "mtls: {mode: DISABLE}", "bar"),
        security_doc(
            AP,
            "httpbin",
            "selector:\n  matchLabels: {app: httpbin}\nrules:\n- when:\n"
            "  - {key: source.namespace, values: [foo]}",
            "bar",
        ),
    ) == [
        "Warning MSH0006 bar/httpbin rules[0].when[0]: peer identity (principals, namespaces, "
        "service accounts, trust domains) needs mutual TLS, but PeerAuthentication is DISABLE "
        "for httpbin-bar: no identity arrives there, so these never match (their notX forms "
        "always do)"
    ]


def test_destination_rule_tls_against_peer_authentication() -> None:
    def rule(name: str, host: str, mode: str) -> str:
        return doc(
            "DestinationRule", name, f"host: {host}\ntrafficPolicy:\n  tls: {{mode: {mode}}}"
        )

    assert findings(
        security_doc(PA, "default", "mtls: {mode: STRICT}", "foo"),
        rule("to-foo", "httpbin.foo.svc.cluster.local", "DISABLE"),
        rule("to-legacy", "httpbin.legacy", "ISTIO_MUTUAL"),
        rule("to-bar", "httpbin.bar", "ISTIO_MUTUAL"),  # PERMISSIVE: fine
    ) == [
        "Warning MSH0006 to-foo trafficPolicy.tls.mode: clients send plaintext (tls.mode "
        "DISABLE) to httpbin-foo, whose PeerAuthentication is STRICT: every connection is reset "
        "(503 UC)",
        "Warning MSH0006 to-legacy trafficPolicy.tls.mode: clients send mTLS (tls.mode "
        "ISTIO_MUTUAL) to httpbin-legacy, which accept plaintext only (PeerAuthentication "
        "DISABLE or no sidecar): the TLS handshake fails (503 UF)",
    ]


def test_jwt_fields_and_remote_ip_get_notes() -> None:
    assert findings(
        security_doc(
            AP,
            "jwt",
            "rules:\n- from:\n  - source: {requestPrincipals: ['*'], remoteIpBlocks: [1.2.3.4]}",
            "foo",
        )
    ) == [
        "Warning MSH0002 foo/jwt rules[0].from[0].source.requestPrincipals: requestPrincipals "
        "needs RequestAuthentication (JWT), which the lab does not support: no request carries "
        "a JWT, so it never matches (its notX form always does)",
        "Info MSH0002 foo/jwt rules[0].from[0].source.remoteIpBlocks: the lab's proxies trust no "
        "X-Forwarded-For hop (numTrustedProxies 0): remote IP is the connection's source address",
    ]


def test_only_one_policy_per_scope_applies() -> None:
    selector = "selector:\n  matchLabels: {app: httpbin}\nmtls: {mode: STRICT}"
    assert findings(
        security_doc(PA, "default", "mtls: {mode: STRICT}", "foo"),
        security_doc(PA, "second", "mtls: {mode: DISABLE}", "foo"),
        security_doc(PA, "a", selector, "bar"),
        security_doc(PA, "b", selector, "bar"),
    ) == [
        "Warning IST0133 foo/second : PeerAuthentication default already sets the namespace "
        "foo-wide mode: only one policy without selector per namespace applies (Istio keeps the "
        "oldest); this one is ignored",
        "Warning IST0133 bar/b selector: workload httpbin-bar is also selected by "
        "PeerAuthentication a: only one workload policy applies (the first); this one is "
        "ignored for the workloads both select",
    ]
