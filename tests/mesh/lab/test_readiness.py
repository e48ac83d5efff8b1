"""``python -m mesh.lab.readiness``: flips a real app's readiness over loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from werkzeug.serving import make_server

from mesh.lab import readiness
from services.reviews.app import create_app


@pytest.fixture
def app_port() -> Iterator[int]:
    server = make_server("127.0.0.1", 0, create_app({"SERVICE_VERSION": "v2"}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def test_fail_then_pass(app_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    health = f"http://127.0.0.1:{app_port}/health"
    assert requests.get(health, timeout=5).status_code == 200
    assert readiness.main(["false", "--app-port", str(app_port)]) == 0
    assert requests.get(health, timeout=5).status_code == 503
    assert "not ready" in capsys.readouterr().out
    assert readiness.main(["true", "--app-port", str(app_port)]) == 0
    assert requests.get(health, timeout=5).status_code == 200


def test_unreachable_app_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert readiness.main(["false", "--app-port", "1"]) == 1
    assert "cannot reach the app" in capsys.readouterr().err
