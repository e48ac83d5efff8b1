"""describe pod: the deciding PeerAuthentication (mesh, namespace, workload, port), the
policies a proxy enforces, what each client sends and what happens, and the conflicts."""

from __future__ import annotations

from pathlib import Path

from mesh.config.resource import Resource
from mesh.lab.workloads import lab_entries, lab_workloads
from mesh.manager.yaml_files import load_paths
from mesh.security.describe import describe_pod, render
from mesh.security.mtls import MtlsMode

SECURITY = lab_workloads(lab_entries("security")).topology

MESH_STRICT = """\
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"""
BAR_PORT_PERMISSIVE = """\
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: httpbin, namespace: bar}
spec:
  selector: {matchLabels: {app: httpbin}}
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: PERMISSIVE}
"""
DENY_ALL = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: foo}
spec: {}
"""
DR_PLAIN = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: httpbin, namespace: bar}
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy: {tls: {mode: DISABLE}}
"""


def _load(tmp_path: Path, *texts: str) -> list[Resource]:
    path = tmp_path / "c.yaml"
    path.write_text("---\n".join(texts))
    return list(load_paths([path]).resources)


def test_mesh_wide_strict_resets_the_legacy_clients(tmp_path: Path) -> None:
    resources = _load(tmp_path, MESH_STRICT, DENY_ALL, DR_PLAIN)
    d = describe_pod(SECURITY.pod("httpbin.foo"), SECURITY, resources)  # type: ignore[arg-type]
    assert d.identity is not None and d.identity.principal == "cluster.local/ns/foo/sa/httpbin"
    assert d.workload_mtls.mode is MtlsMode.STRICT and d.workload_mtls.scope == "mesh"
    assert d.peer_authentications == ("istio-system/default",)
    assert [p.name for p in d.policies] == ["deny-all"]
    outcome = {v.client.name: v.outcome.result for v in d.clients}
    assert outcome["sleep.foo"] == "mutual_tls"
    assert outcome["sleep.legacy"] == "reset"
    # bar's DestinationRule sends plaintext: bar's sidecars are reset (503 UC).
    bar = next(v for v in d.clients if v.client.name == "sleep.bar")
    assert bar.tls_from == "DestinationRule bar/httpbin"
    assert (bar.outcome.status, bar.outcome.response_flag) == (503, "UC")
    assert any(i.code == "MSH0006" and i.kind == "DestinationRule" for i in d.findings)
    text = render(d, {"serial": "ab12", "not_after": "2026-11-27T00:00:00Z"})
    assert "Workload mTLS mode: STRICT (mesh-wide, istio-system/default)" in text
    assert "foo/deny-all (ALLOW, no rules: matches nothing; without another ALLOW" in text
    assert "sleep.legacy -> :8000 sends plaintext [no sidecar]: FAILS: connection reset" in text
    assert "Certificate: serial ab12" in text
    assert "Conflicts and warnings:" in text


def test_a_port_level_override_is_shown_per_port(tmp_path: Path) -> None:
    resources = _load(tmp_path, BAR_PORT_PERMISSIVE)
    d = describe_pod(SECURITY.pod("httpbin.bar"), SECURITY, resources)  # type: ignore[arg-type]
    assert d.workload_mtls.mode is MtlsMode.STRICT and d.workload_mtls.scope == "workload"
    assert dict(d.port_mtls)[8080].mode is MtlsMode.PERMISSIVE
    text = render(d)
    assert "Port 8080: PERMISSIVE (portLevelMtls, bar/httpbin)" in text
    assert "Certificate: none issued yet" in text
    legacy = next(v for v in d.clients if v.client.name == "sleep.legacy")
    assert legacy.outcome.result == "plaintext"


def test_a_pod_without_sidecar_has_no_identity_and_takes_plaintext(tmp_path: Path) -> None:
    d = describe_pod(SECURITY.pod("httpbin.legacy"), SECURITY, _load(tmp_path, MESH_STRICT))  # type: ignore[arg-type]
    assert d.identity is None and d.policies == ()
    assert {v.outcome.result for v in d.clients} == {"plaintext"}
    assert "no identity, plaintext only" in render(d)


# istio.io's documented matrices (sleep.<from> to httpbin.<to>), every pair not listed is 200.
ISTIO_IO_MATRIX = {
    "mtls-permissive": {},
    "mtls-strict-namespace": {("legacy", "foo"): "000"},
    "mtls-strict": {("legacy", "foo"): "000", ("legacy", "bar"): "000"},
    "mtls-workload": {("legacy", "bar"): "000"},
    "mtls-port-level": {},
    "mtls-precedence": {},
}


def test_the_scenarios_give_istio_io_s_reachability_matrix() -> None:
    from mesh.security.describe import reachability_matrix

    for scenario, failing in ISTIO_IO_MATRIX.items():
        resources = list(load_paths([Path("scenarios") / f"{scenario}.yaml"]).resources)
        cells = reachability_matrix(SECURITY, resources, "sleep", "httpbin")
        assert len(cells) == 9
        got = {(c.client.namespace, c.server.namespace): c.code for c in cells if c.code != "200"}
        assert got == failing, scenario
