"""meshlab's commands that need no running lab: arguments, status from files, down, ready."""

from __future__ import annotations

import json
import time

from mesh.cli.meshlab import main
from mesh.meshdir import MeshDir
from tests.helpers import COURSE


def fake_lab(root, *, version=3, unready=()):
    mesh = MeshDir(root).create()
    now = time.time()
    (mesh.snapshot_file).write_text(json.dumps(
        {"version": version, "hash": "h", "generated_at": now, "resources": [], "endpoints": []}
    ))  # fmt: skip
    (mesh.manager_status).write_text(json.dumps({"version": version, "heartbeat": now}))
    for name in [p.name for p in COURSE.pods]:
        role = "gateway" if name == "istio-ingressgateway" else "sidecar"
        record = {"pod": name, "service": name.split("-")[0], "address": "127.0.0.1",
                  "port": 1 if role == "sidecar" else None, "ready": name not in unready,
                  "heartbeat": now, "ttl": 10, "role": role}  # fmt: skip
        (mesh.registry / f"{name}.json").write_text(json.dumps(record))
        status = {"pod": name, "version": version, "hash": "h", "heartbeat": now}
        (mesh.status / f"{name}.json").write_text(json.dumps(status))
    return mesh


def test_status_exit_codes(tmp_path, capsys):
    assert main(["status", "--mesh-dir", str(tmp_path / "none")]) == 2
    fake_lab(tmp_path / "ok")
    assert main(["status", "--mesh-dir", str(tmp_path / "ok")]) == 0
    assert "all 10 proxies ready and synced" in capsys.readouterr().out
    fake_lab(tmp_path / "unready", unready=("reviews-v2",))
    assert main(["status", "--mesh-dir", str(tmp_path / "unready")]) == 1
    assert "not ready or not synced: reviews-v2" in capsys.readouterr().out
    mesh = fake_lab(tmp_path / "missing")
    (mesh.registry / "ratings-v1.json").unlink()
    assert main(["--mesh-dir", str(tmp_path / "missing"), "status"]) == 1


def test_up_needs_local_and_a_valid_port(tmp_path, capsys):
    assert main(["up"]) == 2
    assert "make up" in capsys.readouterr().err
    assert main(["up", "--local", "--gateway-port", "70000"]) == 2


def test_down_and_ready_without_a_lab(tmp_path, capsys):
    assert main(["down", "--mesh-dir", str(tmp_path)]) == 1
    (tmp_path / "lab.pid").write_text("999999999\n")
    assert main(["down", "--mesh-dir", str(tmp_path)]) == 1
    assert main(["ready", "reviews-v2", "maybe", "--mesh-dir", str(tmp_path)]) == 2
    fake_lab(tmp_path / "lab")
    assert main(["ready", "ghost", "false", "--mesh-dir", str(tmp_path / "lab")]) == 1
    # A registered pod whose port answers nothing: a clear error, no traceback.
    assert main(["ready", "reviews-v2", "false", "--mesh-dir", str(tmp_path / "lab")]) == 1
    assert "Traceback" not in capsys.readouterr().err
