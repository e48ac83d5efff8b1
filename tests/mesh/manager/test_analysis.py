"""The security checks run beside validation everywhere config is checked: ``meshctl
analyze`` (file:line, field path), ``meshctl apply`` (an error writes nothing) and the
manager (the same findings in its status)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.cli.meshctl import main
from mesh.lab.workloads import lab_entries, lab_workloads
from mesh.manager.analysis import analyze_all
from mesh.manager.yaml_files import load_paths
from mesh.meshdir import MeshDir

SECURITY = lab_workloads(lab_entries("security")).topology

STRICT_FOO = """\
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: default
  namespace: foo
spec:
  mtls:
    mode: STRICT
"""
PLAIN_TO_FOO = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: httpbin
  namespace: bar
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy:
    tls:
      mode: DISABLE
"""
TYPO = """\
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: default
  namespace: foo
spec:
  mtls:
    mode: STRICTT
"""
NO_WORKLOAD = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ghost
  namespace: foo
spec:
  selector:
    matchLabels:
      app: ghost
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/foo/sa/nobody"]
"""


def _file(tmp_path: Path, name: str, *texts: str) -> Path:
    path = tmp_path / name
    path.write_text("---\n".join(texts))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_analyze_all_adds_the_security_findings(tmp_path: Path) -> None:
    loaded = load_paths([_file(tmp_path, "c.yaml", STRICT_FOO, PLAIN_TO_FOO, NO_WORKLOAD)])
    codes = {i.code for i in analyze_all(loaded.resources, SECURITY)}
    assert {"MSH0006", "IST0127", "MSH0007"} <= codes


def test_meshctl_analyze_shows_an_mtls_conflict_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "conflict.yaml", STRICT_FOO, PLAIN_TO_FOO)
    code, out = run(capsys, "analyze", "--offline", "--profile", "security", str(path))
    assert code == 0, out  # warnings: valid Istio, applied on purpose to show the failure
    assert f"Warning [MSH0006] (DestinationRule bar/httpbin {path}:" in out
    assert "trafficPolicy.tls.mode" in out


def test_a_malformed_policy_is_an_error_with_did_you_mean_and_nothing_is_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "typo.yaml", TYPO)
    code, out = run(capsys, "analyze", "--offline", "--profile", "security", str(path))
    assert code == 1
    assert f"{path}:8" in out and "mtls.mode" in out and "STRICT" in out
    mesh = MeshDir(tmp_path / "mesh").create()
    code, out = run(capsys, "apply", "-f", str(path), "--mesh-dir", str(mesh.root))
    assert code != 0, out
    assert list(mesh.config.glob("*.yaml")) == []


def test_apply_and_delete_the_security_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()
    path = _file(tmp_path, "strict.yaml", STRICT_FOO)
    code, out = run(capsys, "apply", "-f", str(path), "--mesh-dir", str(mesh.root))
    assert code == 0, out
    assert "peerauthentication.security.istio.io/default -n foo created" in out
    code, out = run(capsys, "get", "pa", "--mesh-dir", str(mesh.root))
    assert code == 0 and out.split("\n")[1].split()[:2] == ["foo", "default"], out
    code, out = run(capsys, "delete", "pa", "default", "-n", "foo", "--mesh-dir", str(mesh.root))
    assert code == 0 and 'peerauthentication.security.istio.io "default" deleted' in out
