"""The manager process as the mesh CA, with the bad inputs a trainee can make: a CSR for
another pod's identity and a garbage CSR (refused, said in meshctl status), a CA file
corrupted while it runs (the last good CA keeps signing) or before it starts (no CA, said
why; the certificates already issued stay)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mesh.meshdir import MeshDir, atomic_write, read_manager_status
from mesh.security.certs import identity_of, make_csr, new_private_key, parse_certificates
from mesh.security.identity import Identity

pytestmark = pytest.mark.integration

DETAILS = Identity("default", "bookinfo-details")


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Manager:
    def __init__(self, mesh: MeshDir, ca_dir: Path) -> None:
        self.mesh, self.ca_dir = mesh, ca_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "MESHLAB_WORKLOADS"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesh.manager", "--mesh-dir", str(self.mesh.root),
             "--ca-dir", str(self.ca_dir), "--heartbeat", "0.2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        pid = self.proc.pid
        wait_for(
            lambda: (s := read_manager_status(self.mesh)) and s.pid == pid and s.ca,
            "the new manager's CA status",
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def ca(self) -> dict[str, object]:
        status = read_manager_status(self.mesh)
        return dict(status.ca or {}) if status else {}


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    running = Manager(MeshDir(tmp_path / "mesh").create(), tmp_path / "lab" / "ca")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _request(mesh: MeshDir, pod: str, identity: Identity) -> None:
    atomic_write(mesh.csr_file(pod), make_csr(new_private_key(), identity))


def _status_text(mesh: MeshDir) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mesh.cli.meshctl", "status", "--mesh-dir", str(mesh.root)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stdout


def test_issues_refuses_and_survives_a_corrupted_ca(manager: Manager) -> None:
    mesh = manager.mesh
    _request(mesh, "details-v1", DETAILS)
    wait_for(lambda: mesh.cert_file("details-v1").exists(), "details-v1's certificate")
    issued = mesh.cert_file("details-v1").read_bytes()
    assert identity_of(parse_certificates(issued)[0]) == DETAILS
    # Another pod's identity, and garbage: refused, and meshctl status says why.
    _request(mesh, "ratings-v1", DETAILS)
    atomic_write(mesh.csr_file("reviews-v1"), b"-----BEGIN CERTIFICATE REQUEST-----\nxx\n")
    wait_for(lambda: {"ratings-v1", "reviews-v1"} <= set(manager.ca().get("refused") or {}),
             "the refusals")  # fmt: skip
    text = _status_text(mesh)
    assert (
        "refused ratings-v1: CSR refused: it asks for spiffe://cluster.local/ns/default/sa/bookinfo-details"
        in text
    )
    assert "refused reviews-v1: CSR refused: not a PEM certificate request" in text
    assert not mesh.cert_file("ratings-v1").exists()
    # Corrupted while running: reported, the last good CA keeps signing.
    (manager.ca_dir / "ca-key.pem").write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n")
    wait_for(lambda: manager.ca().get("error"), "the CA error")
    assert "ca-key.pem is not a PEM private key" in str(manager.ca()["error"])
    _request(mesh, "details-v2", DETAILS)
    wait_for(lambda: mesh.cert_file("details-v2").exists(), "a certificate from the last good CA")
    # Restarted on the corrupted file: no CA, says why, overwrites nothing, signs nothing.
    manager.stop()
    manager.start()
    ca = manager.ca()
    assert ca["root"] is None and "no CA" in str(ca["error"])
    assert "mesh CA: NO CA LOADED" in _status_text(mesh)
    _request(mesh, "productpage-v1", Identity("default", "bookinfo-productpage"))
    wait_for(lambda: "productpage-v1" in (manager.ca().get("refused") or {}), "the wait")
    assert not mesh.cert_file("productpage-v1").exists()
    assert mesh.cert_file("details-v1").read_bytes() == issued
    assert b"garbage" in (manager.ca_dir / "ca-key.pem").read_bytes()


def test_the_ca_directory_must_not_be_in_the_mesh_directory(tmp_path: Path) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()
    done = subprocess.run(
        [sys.executable, "-m", "mesh.manager", "--mesh-dir", str(mesh.root),
         "--ca-dir", str(mesh.root / "ca")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "inside the mesh directory" in done.stderr
