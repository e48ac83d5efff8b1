import json
import time

from mesh.manager.__main__ import main


def test_healthcheck(tmp_path, capsys):
    (tmp_path / "status").mkdir()
    assert main(["--mesh-dir", str(tmp_path), "--healthcheck"]) == 1
    (tmp_path / "status" / "manager.json").write_text(json.dumps({"heartbeat": time.time()}))
    assert main(["--mesh-dir", str(tmp_path), "--healthcheck"]) == 0
    (tmp_path / "status" / "manager.json").write_text(json.dumps({"heartbeat": time.time() - 60}))
    assert main(["--mesh-dir", str(tmp_path), "--healthcheck"]) == 1
    assert "heartbeat" in capsys.readouterr().err


def test_bad_arguments_exit_2_without_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MESH_DIR", raising=False)
    assert main([]) == 2
    assert main(["--mesh-dir", str(tmp_path), "--debounce", "-1"]) == 2
    assert main(["--mesh-dir", "/proc/nope/x"]) == 2
    assert "Traceback" not in capsys.readouterr().err
