"""Mutual TLS: what servers accept, what clients send, and istio.io's reachability matrices.

The matrices are those of istio.io's "Mutual TLS Migration" and "Authentication Policy" tasks:
``sleep`` in foo, bar and legacy (legacy without sidecar) calls ``httpbin`` (Service port 8000,
container port 8080) in each namespace that has one; "200" where the task shows 200, "000"
where it shows ``000`` / ``command terminated with exit code 56`` (connection reset).
"""

from __future__ import annotations

import pytest

from mesh.config.loader import load_text
from mesh.config.model import DestinationRule
from mesh.security.mtls import (
    ClientTLS,
    EffectiveMtls,
    MtlsMode,
    PeerAuthentications,
    client_tls,
    cluster_tls,
    connect,
    endpoint_tls_mode,
    reachability,
)
from tests.helpers import doc, docs, security_doc, task_pod

PA = "PeerAuthentication"


SLEEP = {ns: task_pod("sleep", ns, sidecar=ns != "legacy") for ns in ("foo", "bar", "legacy")}
HTTPBIN = {ns: task_pod("httpbin", ns, sidecar=ns != "legacy") for ns in ("foo", "bar", "legacy")}


def policies(*documents: str) -> PeerAuthentications:
    loaded = load_text(docs(*documents), "policies.yaml") if documents else None
    assert loaded is None or loaded.ok, [str(i) for i in loaded.issues]
    return PeerAuthentications(loaded.resources if loaded else [])


def matrix(peer_authns: PeerAuthentications, servers: tuple[str, ...]) -> dict[str, str]:
    """ "sleep.<ns> -> httpbin.<ns>": "200" or "000", as the task's curl loop prints."""
    cells = {}
    for client_ns, client in SLEEP.items():
        for server_ns in servers:
            outcome = reachability(
                client=client,
                server=HTTPBIN[server_ns],
                target_port=8080,
                service_port=8000,
                peer_authentications=peer_authns,
            )
            cells[f"sleep.{client_ns} -> httpbin.{server_ns}"] = "200" if outcome.ok else "000"
    return cells


def expect(failing: set[str], servers: tuple[str, ...]) -> dict[str, str]:
    return {
        f"sleep.{c} -> httpbin.{s}": "000" if f"{c}->{s}" in failing else "200"
        for c in ("foo", "bar", "legacy")
        for s in servers
    }


STRICT_FOO = security_doc(PA, "default", "mtls: {mode: STRICT}", "foo")
STRICT_MESH = security_doc(PA, "default", "mtls: {mode: STRICT}", "istio-system")
MIGRATION = ("foo", "bar")  # the migration task runs httpbin in foo and bar only
AUTHN = ("foo", "bar", "legacy")


@pytest.mark.parametrize(
    ("stage", "config", "failing"),
    [
        ("start: PERMISSIVE by default", (), set()),
        ("lock down foo (namespace STRICT)", (STRICT_FOO,), {"legacy->foo"}),
        (
            "lock down the mesh (istio-system STRICT)",
            (STRICT_MESH,),
            {"legacy->foo", "legacy->bar"},
        ),
        ("clean up", (), set()),
    ],
)
def test_mtls_migration_task_matrix(stage: str, config: tuple[str, ...], failing: set[str]) -> None:
    assert matrix(policies(*config), MIGRATION) == expect(failing, MIGRATION)


HTTPBIN_BAR_STRICT = security_doc(
    PA, "httpbin", "selector:\n  matchLabels: {app: httpbin}\nmtls: {mode: STRICT}", "bar"
)
HTTPBIN_BAR_PORT_8080_DISABLE = security_doc(
    PA,
    "httpbin",
    "selector:\n  matchLabels: {app: httpbin}\nmtls: {mode: STRICT}\n"
    "portLevelMtls:\n  8080: {mode: DISABLE}",
    "bar",
)
FOO_OVERWRITE = security_doc(
    PA,
    "overwrite-example",
    "selector:\n  matchLabels: {app: httpbin}\nmtls: {mode: DISABLE}",
    "foo",
)


@pytest.mark.parametrize(
    ("stage", "config", "failing"),
    [
        ("auto mutual TLS, nothing applied", (), set()),
        ("globally STRICT", (STRICT_MESH,), {"legacy->foo", "legacy->bar"}),
        ("namespace foo STRICT", (STRICT_FOO,), {"legacy->foo"}),
        ("workload httpbin.bar STRICT", (HTTPBIN_BAR_STRICT,), {"legacy->bar"}),
        ("port 8080 of httpbin.bar DISABLE", (HTTPBIN_BAR_PORT_8080_DISABLE,), set()),
        ("precedence: workload DISABLE over namespace STRICT", (STRICT_FOO, FOO_OVERWRITE), set()),
    ],
)
def test_authn_policy_task_matrix(stage: str, config: tuple[str, ...], failing: set[str]) -> None:
    assert matrix(policies(*config), AUTHN) == expect(failing, AUTHN)


def test_auto_mtls_speaks_mtls_to_sidecars_and_plaintext_to_legacy() -> None:
    """The task's check: httpbin.foo and .bar get X-Forwarded-Client-Cert (mTLS), legacy not."""
    results = {
        ns: reachability(
            client=SLEEP["foo"],
            server=HTTPBIN[ns],
            target_port=8080,
            service_port=8000,
            peer_authentications=policies(),
        )
        for ns in AUTHN
    }
    assert {ns: r.connection_security_policy for ns, r in results.items()} == {
        "foo": "mutual_tls",
        "bar": "mutual_tls",
        "legacy": "none",
    }


def test_strict_resets_a_client_without_sidecar_and_answers_503_uc_to_a_plaintext_sidecar() -> None:
    strict = MtlsMode.STRICT
    legacy = connect(
        client_sidecar=False, sends=ClientTLS.PLAINTEXT, server=HTTPBIN["foo"], server_mode=strict
    )
    assert (legacy.result, legacy.status, legacy.response_flag) == ("reset", None, None)
    sidecar = connect(
        client_sidecar=True, sends=ClientTLS.PLAINTEXT, server=HTTPBIN["foo"], server_mode=strict
    )
    assert (sidecar.result, sidecar.status, sidecar.response_flag) == ("reset", 503, "UC")


# ---------------------------------------------------------------- resolution


def test_precedence_workload_over_namespace_over_mesh_and_unset_inherits() -> None:
    peer_authns = policies(
        security_doc(PA, "default", "mtls: {mode: STRICT}", "istio-system"),
        security_doc(PA, "default", "mtls: {mode: UNSET}", "foo"),
        security_doc(PA, "default", "mtls: {mode: DISABLE}", "bar"),
        security_doc(
            PA,
            "httpbin",
            "selector:\n  matchLabels: {app: httpbin}\nportLevelMtls:\n"
            "  8080: {mode: PERMISSIVE}\n  9090: {mode: UNSET}",
            "bar",
        ),
    )
    assert peer_authns.for_workload(SLEEP["foo"]) == EffectiveMtls(
        MtlsMode.STRICT, "mesh", "istio-system/default"
    )
    assert peer_authns.for_workload(SLEEP["bar"]) == EffectiveMtls(
        MtlsMode.DISABLE, "namespace", "bar/default"
    )
    # The workload policy sets no mode: its ports inherit the namespace's DISABLE, except 8080.
    assert peer_authns.for_workload(HTTPBIN["bar"], 8080) == EffectiveMtls(
        MtlsMode.PERMISSIVE, "port", "bar/httpbin"
    )
    assert peer_authns.for_workload(HTTPBIN["bar"], 9090).mode is MtlsMode.DISABLE
    assert peer_authns.namespace_mode("foo") is MtlsMode.STRICT
    assert peer_authns.namespace_mode("legacy") is MtlsMode.STRICT
    assert policies().for_workload(HTTPBIN["foo"]) == EffectiveMtls(MtlsMode.PERMISSIVE)


def test_a_selector_in_the_root_namespace_is_ignored_and_the_first_policy_of_a_scope_wins() -> None:
    peer_authns = policies(
        security_doc(
            PA,
            "ignored",
            "selector:\n  matchLabels: {app: httpbin}\nmtls: {mode: STRICT}",
            "istio-system",
        ),
        security_doc(PA, "first", "mtls: {mode: DISABLE}", "foo"),
        security_doc(PA, "second", "mtls: {mode: STRICT}", "foo"),
    )
    assert peer_authns.for_workload(HTTPBIN["bar"]).mode is MtlsMode.PERMISSIVE
    assert peer_authns.for_workload(HTTPBIN["foo"]).policy == "foo/first"


# ---------------------------------------------------------------- client side


def rule(spec: str) -> DestinationRule:
    loaded = load_text(doc("DestinationRule", "httpbin", spec), "dr.yaml")
    assert loaded.ok, [str(i) for i in loaded.issues]
    return loaded.resources[0].spec


DR_PRECEDENCE = rule(
    """
    host: httpbin
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
      portLevelSettings:
      - port: {number: 8000}
        tls: {mode: DISABLE}
      - port: {number: 9000}
        loadBalancer: {simple: RANDOM}
    subsets:
    - name: v1
      labels: {version: v1}
      trafficPolicy:
        tls: {mode: SIMPLE}
    - name: v2
      labels: {version: v2}
      trafficPolicy:
        portLevelSettings:
        - port: {number: 8000}
          loadBalancer: {simple: RANDOM}
    - name: v3
      labels: {version: v3}
      trafficPolicy:
        loadBalancer: {simple: RANDOM}
    """
)


@pytest.mark.parametrize(
    ("subset", "port", "cluster", "endpoint"),
    [
        (None, 7000, "ISTIO_MUTUAL", "ISTIO_MUTUAL"),  # the traffic policy's tls
        (None, 8000, "DISABLE", "DISABLE"),  # port-level tls replaces it
        # A port-level entry without tls replaces the policy wholesale for the cluster (no
        # tls: auto mTLS), while the endpoint check falls back to the policy's tls.
        (None, 9000, None, "ISTIO_MUTUAL"),
        ("v1", 8000, "SIMPLE", "SIMPLE"),  # a subset's tls overrides the rule's port level
        ("v2", 8000, None, "DISABLE"),  # a subset's port level without tls: wholesale, none
        ("v3", 8000, "DISABLE", "DISABLE"),  # a subset without tls inherits the rule's
    ],
)
def test_destination_rule_tls_precedence(
    subset: str | None, port: int, cluster: str | None, endpoint: str | None
) -> None:
    settings = cluster_tls(DR_PRECEDENCE, subset, port)
    assert (settings.mode if settings else None) == cluster
    assert endpoint_tls_mode(DR_PRECEDENCE, subset, port) == endpoint


@pytest.mark.parametrize(
    ("server", "mode", "dr_tls", "sends"),
    [
        ("foo", None, None, ClientTLS.ISTIO_MUTUAL),  # auto mTLS: sidecar
        ("legacy", None, None, ClientTLS.PLAINTEXT),  # auto mTLS: no sidecar
        ("foo", "DISABLE", None, ClientTLS.PLAINTEXT),  # auto mTLS honours DISABLE
        ("legacy", None, "ISTIO_MUTUAL", ClientTLS.ISTIO_MUTUAL),  # a DR forces it anyway
        ("foo", None, "DISABLE", ClientTLS.PLAINTEXT),
        ("foo", None, "SIMPLE", ClientTLS.SIMPLE),
    ],
)
def test_what_a_client_sidecar_sends(
    server: str, mode: str | None, dr_tls: str | None, sends: ClientTLS
) -> None:
    config = [security_doc(PA, "default", f"mtls: {{mode: {mode}}}", "foo")] if mode else []
    settings = rule(f"host: httpbin\ntrafficPolicy:\n  tls: {{mode: {dr_tls}}}") if dr_tls else None
    assert (
        client_tls(
            server=HTTPBIN[server],
            target_port=8080,
            service_namespace=server,
            service_port=8000,
            peer_authentications=policies(*config),
            rule=settings,
        )
        is sends
    )


@pytest.mark.parametrize(
    ("sends", "server", "mode", "result", "flag"),
    [
        (ClientTLS.ISTIO_MUTUAL, "foo", MtlsMode.STRICT, "mutual_tls", None),
        (ClientTLS.ISTIO_MUTUAL, "foo", MtlsMode.PERMISSIVE, "mutual_tls", None),
        (ClientTLS.PLAINTEXT, "foo", MtlsMode.PERMISSIVE, "plaintext", None),
        (ClientTLS.ISTIO_MUTUAL, "foo", MtlsMode.DISABLE, "tls_error", "UF"),
        (ClientTLS.ISTIO_MUTUAL, "legacy", MtlsMode.PERMISSIVE, "tls_error", "UF"),
        (ClientTLS.SIMPLE, "foo", MtlsMode.STRICT, "tls_error", "UF"),
        (ClientTLS.PLAINTEXT, "foo", MtlsMode.STRICT, "reset", "UC"),
    ],
)
def test_connection_outcomes(
    sends: ClientTLS, server: str, mode: MtlsMode, result: str, flag: str | None
) -> None:
    outcome = connect(client_sidecar=True, sends=sends, server=HTTPBIN[server], server_mode=mode)
    assert (outcome.result, outcome.response_flag) == (result, flag)
    assert outcome.status == (None if flag is None else 503)
