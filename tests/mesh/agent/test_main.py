"""The agent's resident loop: when to issue (reuse a fresh generation, renew at renew_at,
re-key for another identity), and one real ``--once`` round trip with the manager's CA."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mesh.agent import secrets
from mesh.agent.__main__ import next_action
from mesh.manager.ca import CAShell
from mesh.meshdir import MeshDir
from mesh.topology import Pod, Topology

URI = "spiffe://cluster.local/ns/foo/sa/sleep"
NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def _meta(renew_in: float, expire_in: float, uri: str = URI) -> dict[str, str]:
    return {
        "identity": uri,
        "renew_at": secrets.format_time(NOW + timedelta(seconds=renew_in)),
        "not_after": secrets.format_time(NOW + timedelta(seconds=expire_in)),
    }


def test_next_action() -> None:
    assert next_action(None, URI, NOW) == 0.0
    assert next_action(_meta(60, 120), URI, NOW) == 60.0
    assert next_action(_meta(-1, 120), URI, NOW) == 0.0
    assert next_action(_meta(60, -1), URI, NOW) == 0.0  # expired: at once
    assert next_action(_meta(60, 120, uri="spiffe://x/ns/a/sa/b"), URI, NOW) == 0.0
    assert next_action({"identity": URI, "renew_at": "soon"}, URI, NOW) == 0.0


def _agent(mesh: MeshDir, directory: Path, sa: str = "sleep") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.agent", "--once", "--pod", "sleep", "--namespace", "foo",
         "--service-account", sa, "--mesh-dir", str(mesh.root), "--secrets-dir", str(directory),
         "--timeout", "20"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_once_gets_a_certificate_from_the_manager_s_ca_and_then_reuses_it(tmp_path: Path) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()
    topology = Topology(pods=(Pod("sleep", {"app": "sleep"}, "foo", "sleep"),))
    ca = CAShell(mesh, tmp_path / "ca", topology, timedelta(minutes=2), say=lambda _m: None)
    ca.load()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            ca.process()
            time.sleep(0.05)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        directory = tmp_path / "pods" / "sleep" / "secrets"
        first = _agent(mesh, directory)
        assert first.returncode == 0, first.stderr
        meta = secrets.read_meta(directory)
        assert meta is not None and meta["identity"] == URI
        again = _agent(mesh, directory)  # not due yet: nothing new
        assert again.returncode == 0, again.stderr
        assert secrets.read_meta(directory) == meta
        assert secrets.generations(directory) == [1]
    finally:
        stop.set()
        thread.join()
