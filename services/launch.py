"""Start Bookinfo services under gunicorn as child processes, outside the mesh.

For tests and benchmarks that need the real server (the lab itself starts pods through
``mesh.lab``). Primitives: ``free_port()``, ``gunicorn_command(service)``,
``start(service, port, env)`` -> ``Popen`` once ``/health`` answers 200,
``stop(*processes)``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_command(service: str) -> list[str]:
    """The documented run command, with this interpreter's gunicorn."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:services.gunicorn_conf",
        f"services.{service}.app:create_app()",
    ]


def start(
    service: str,
    port: int,
    env: dict[str, str] | None = None,
    *,
    prefix: Sequence[str] = (),
    timeout: float = 15.0,
) -> subprocess.Popen[bytes]:
    """Run ``service`` on 127.0.0.1:``port``; return once its /health answers 200.

    ``prefix`` goes before the command (e.g. ``taskset -c 1``). The child inherits this
    environment without proxy variables: these services call each other directly. Its log
    goes to a temporary file that is shown if it fails to start.
    """
    child_env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    child_env.update({"PORT": str(port), "SERVICE_NAME": service, **(env or {})})
    # A file, not a pipe: nobody reads gunicorn's log while it runs, and a full pipe blocks it.
    with tempfile.TemporaryFile() as log, requests.Session() as probe:
        process = subprocess.Popen(
            [*prefix, *gunicorn_command(service)], env=child_env, stdout=log, stderr=log
        )
        probe.trust_env = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if probe.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return process
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        stop(process)
        log.seek(0)
        tail = log.read().decode(errors="replace")[-2000:]
    raise RuntimeError(f"{service} not healthy on 127.0.0.1:{port} within {timeout} s:\n{tail}")


def stop(*processes: subprocess.Popen[bytes]) -> None:
    """Stop them all at once: SIGINT (gunicorn's quick shutdown; SIGTERM's graceful one
    costs ~2 s each and nothing here is worth draining), then SIGKILL if one lingers."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGINT)
    for process in running:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
