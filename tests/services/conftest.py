"""Fixtures for the Bookinfo service tests: real loopback servers instead of mocks.

- ``clean_env`` (autouse): no knob or proxy variable from the caller's shell leaks in.
- ``serve(app) -> base URL``: runs any WSGI app on 127.0.0.1:<free port> for one test.
- ``Recorder``: a tiny upstream that records each request (path, headers) and answers what
  the test told it to, so tests assert what a service really sent on the wire.
- ``dead_url``: a loopback URL where nothing listens (connection refused).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

KNOBS = (
    "SERVICE_NAME",
    "SERVICE_VERSION",
    "POD_NAME",
    "HOSTNAME",
    "CLUSTER_NAME",
    "FAIL_MODE",
    "FAIL_SEED",
    "START_UNREADY_SECONDS",
    "EXTRA_LATENCY_MS",
    "DETAILS_URL",
    "REVIEWS_URL",
    "RATINGS_URL",
    "DETAILS_TIMEOUT_SECONDS",
    "REVIEWS_TIMEOUT_SECONDS",
    "REVIEWS_ATTEMPTS",
    "RATINGS_TIMEOUT_SECONDS",
    "ENABLE_RATINGS",
    "STAR_COLOR",
    "SECRET_KEY",
    "PORT",
    "BIND",
    "GUNICORN_WORKERS",
    "GUNICORN_THREADS",
)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KNOBS + PROXY_VARS + tuple(v.lower() for v in PROXY_VARS):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    servers = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        # A short poll interval keeps shutdown() (once per test) from costing half a second.
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class Seen:
    """One request as the recorder received it."""

    path: str
    host: str
    headers: dict[str, str]


@dataclass
class Recorder:
    """An upstream that records requests and answers ``status``/``body``/``headers``."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    seen: list[Seen] = field(default_factory=list)

    def app(self) -> Flask:
        app = Flask("recorder")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
        @app.route("/<path:path>", methods=["GET", "POST"])
        def record(path: str) -> Response:
            self.seen.append(
                Seen(
                    "/" + path,
                    request.host,
                    {k.lower(): v for k, v in request.headers.items()},
                )
            )
            time.sleep(self.delay)
            response = jsonify(self.body) if self.body is not None else Response("not json")
            response.status_code = self.status
            response.headers.update(self.headers)
            return response

        return app


@pytest.fixture
def recorder(serve: Callable[[Any], str]) -> Callable[..., tuple[Recorder, str]]:
    """``recorder(status=..., body=..., headers=..., delay=...) -> (Recorder, base URL)``."""

    def start(**kwargs: Any) -> tuple[Recorder, str]:
        rec = Recorder(**kwargs)
        return rec, serve(rec.app())

    return start
