"""The manager as the mesh CA: a root made once and kept out of the mesh directory, CSRs
signed for the identity the pod is entitled to, refusals in the status, and a corrupted CA
file that is reported and never overwritten (the last good CA and certificates stay)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh.manager.ca import CAShell, ca_status_lines
from mesh.meshdir import MeshDir, RegistryRecord, atomic_write
from mesh.security.ca import MeshCA
from mesh.security.certs import identity_of, make_csr, new_private_key, parse_certificates
from mesh.security.identity import Identity
from mesh.topology import Pod, Topology

TOPOLOGY = Topology(
    pods=(
        Pod("sleep", {"app": "sleep"}, "foo", "sleep"),
        Pod("httpbin", {"app": "httpbin"}, "foo", "httpbin"),
    )
)


def _shell(tmp_path: Path, **kwargs: object) -> tuple[CAShell, MeshDir, list[str]]:
    mesh = MeshDir(tmp_path / "mesh").create()
    said: list[str] = []
    shell = CAShell(
        mesh, tmp_path / "lab" / "ca", TOPOLOGY, timedelta(hours=1), say=said.append,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    return shell, mesh, said


def _csr(mesh: MeshDir, pod: str, identity: Identity) -> None:
    atomic_write(mesh.csr_file(pod), make_csr(new_private_key(), identity))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_a_root_kept_0600_outside_the_mesh(tmp_path: Path) -> None:
    shell, mesh, said = _shell(tmp_path)
    shell.load()
    assert shell.ca is not None and shell.error is None
    assert _mode(shell.ca_dir) == 0o700
    assert _mode(shell.ca_dir / "ca-key.pem") == 0o600
    assert mesh.root_cert_file.read_bytes() == shell.ca.root_pem
    assert "created a new root" in said[0]
    # A restart loads the same root.
    again, _, _ = _shell(tmp_path)
    again.load()
    assert again.ca.root == shell.ca.root
    assert "loaded from" in again.source


def test_a_csr_is_signed_for_the_pod_s_own_identity(tmp_path: Path) -> None:
    shell, mesh, _ = _shell(tmp_path)
    shell.load()
    _csr(mesh, "sleep", Identity("foo", "sleep"))
    assert shell.process() == ["sleep"]
    leaf = parse_certificates(mesh.cert_file("sleep").read_bytes())[0]
    assert identity_of(leaf) == Identity("foo", "sleep")
    assert shell.status()["issued"]["sleep"]["serial"] == f"{leaf.serial_number:x}"
    assert shell.process() == []  # answered once per CSR


@pytest.mark.parametrize(
    ("pod", "content", "reason"),
    [
        ("sleep", "httpbin", "asks for spiffe://cluster.local/ns/foo/sa/httpbin"),
        ("sleep", b"-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n", "not a PEM"),
        ("ghost", "sleep", "no pod 'ghost'"),
    ],
)
def test_refusals_are_reported_and_nothing_is_issued(
    tmp_path: Path, pod: str, content: str | bytes, reason: str
) -> None:
    shell, mesh, said = _shell(tmp_path)
    shell.load()
    if isinstance(content, bytes):
        atomic_write(mesh.csr_file(pod), content)
    else:
        _csr(mesh, pod, Identity("foo", content))
    shell.process()
    assert not mesh.cert_file(pod).exists()
    assert reason in shell.status()["refused"][pod]["reason"]
    assert any(reason in line for line in said)
    assert any(reason in line for line in ca_status_lines(shell.status()))


def test_a_pod_outside_the_topology_gets_its_registry_identity(tmp_path: Path) -> None:
    shell, mesh, _ = _shell(tmp_path)
    shell.load()
    record = RegistryRecord("extra", "extra", "127.0.0.1", 1, namespace="bar", service_account="x")
    _csr(mesh, "extra", Identity("bar", "x"))
    assert shell.process([record]) == ["extra"]


def test_a_corrupted_ca_file_is_reported_and_the_last_good_ca_kept(tmp_path: Path) -> None:
    shell, mesh, said = _shell(tmp_path)
    shell.load()
    good = shell.ca
    _csr(mesh, "sleep", Identity("foo", "sleep"))
    shell.process()
    issued = mesh.cert_file("sleep").read_bytes()
    (shell.ca_dir / "ca-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    shell.check_reload()
    assert shell.ca is good
    assert "ca-key.pem is not a PEM private key" in (shell.error or "")
    assert "keeping the CA loaded at" in (shell.error or "")
    assert mesh.cert_file("sleep").read_bytes() == issued
    assert b"nope" in (shell.ca_dir / "ca-key.pem").read_bytes()  # never overwritten
    # A fresh manager on the corrupted files: no CA, CSRs wait, nothing overwritten.
    fresh, _, _ = _shell(tmp_path)
    fresh.load()
    assert fresh.ca is None and "no CA" in (fresh.error or "")
    _csr(mesh, "httpbin", Identity("foo", "httpbin"))
    assert fresh.process() == []
    assert "no usable CA" in fresh.status()["refused"]["httpbin"]["reason"]
    assert mesh.cert_file("sleep").read_bytes() == issued
    assert ca_status_lines(fresh.status())[0] == "mesh CA: NO CA LOADED"


def test_a_supplied_cacerts_directory_is_used_as_istio_s(tmp_path: Path) -> None:
    supplied = MeshCA.create(datetime.now(UTC))
    cacerts = tmp_path / "cacerts"
    cacerts.mkdir()
    for name, data in supplied.files().items():
        (cacerts / name).write_bytes(data)
    shell, mesh, _ = _shell(tmp_path, cacerts=cacerts)
    shell.load()
    assert shell.ca.root == supplied.root
    assert not shell.ca_dir.exists()  # nothing copied
    _csr(mesh, "sleep", Identity("foo", "sleep"))
    assert shell.process() == ["sleep"]


def test_status_lines_without_a_ca() -> None:
    assert ca_status_lines(None) == ["mesh CA: off (the manager runs without --ca-dir)"]
