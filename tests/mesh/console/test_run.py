"""The console's command line: its settings from flags and the environment, and bad arguments
refused with exit code 2 and a sentence (no traceback). Serving is tested in
tests/integration/test_observability.py, which runs ``python -m mesh.console``."""

from __future__ import annotations

import pytest

from mesh.console.app import DEFAULT_PORT
from mesh.console.run import build_parser, main


def test_flags_default_to_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CONSOLE_PORT", raising=False)
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    monkeypatch.setenv("MESH_DIR", "/srv/mesh")
    args = build_parser().parse_args([])
    assert (args.mesh_dir, args.port, args.prometheus) == (
        "/srv/mesh",
        DEFAULT_PORT,
        "http://127.0.0.1:9090",
    )
    monkeypatch.setenv("CONSOLE_PORT", "20002")
    monkeypatch.setenv("PROMETHEUS_URL", "http://prometheus:9090")
    args = build_parser().parse_args(["--mesh-dir", "/tmp/lab"])
    assert (args.mesh_dir, args.port, args.prometheus) == (
        "/tmp/lab",
        20002,
        "http://prometheus:9090",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--mesh-dir (or MESH_DIR) is required"),
        (["--mesh-dir", "{tmp}", "--port", "0"], "--port 1..65535"),
        (["--mesh-dir", "{tmp}", "--port", "70000"], "--port 1..65535"),
        (["--mesh-dir", "{tmp}", "--max-traces", "0"], "--max-traces >= 1"),
        (["--mesh-dir", "{tmp}", "--prometheus-timeout", "0"], "--prometheus-timeout > 0"),
    ],
)
def test_bad_arguments_exit_2_with_a_sentence(
    argv: list[str], message: str, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
):
    monkeypatch.delenv("MESH_DIR", raising=False)
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
