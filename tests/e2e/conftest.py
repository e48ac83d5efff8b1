"""The compose lab, once for the e2e session: ``make up`` from whatever state, ``make down`` after.

Uses its own compose project (``E2E_PROJECT``, default ``meshlab-e2e``), its own ports
(``E2E_GATEWAY_PORT``, default 18080; ``E2E_PROMETHEUS_PORT`` and ``E2E_CONSOLE_PORT``, default
the gateway's + 10 and + 11) and its own host config directory, so it neither collides
with a trainee's lab nor reads their YAML; ``MESHLAB_IMAGE`` names the image it builds and runs,
so two checkouts can run their e2e sessions side by side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_PORT = int(os.environ.get("E2E_GATEWAY_PORT", "18080"))
LOCUST_PORT = int(os.environ.get("E2E_LOCUST_PORT", "18089"))
PROJECT = os.environ.get("E2E_PROJECT", "meshlab-e2e")
PROMETHEUS_PORT = int(os.environ.get("E2E_PROMETHEUS_PORT", str(GATEWAY_PORT + 10)))
CONSOLE_PORT = int(os.environ.get("E2E_CONSOLE_PORT", str(GATEWAY_PORT + 11)))


def _require_docker() -> None:
    # e2e tests never skip here: a machine without Docker is a failure to report loudly.
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: the e2e tests need Docker Engine and compose")
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"docker engine not reachable: {probe.stderr.strip()[:300]}")


@dataclass
class ComposeLab:
    env: dict[str, str]
    config_dir: Path

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{GATEWAY_PORT}"

    def make_result(self, *targets: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``make TARGET...`` on this lab, whatever its exit status."""
        return subprocess.run(
            ["make", "--no-print-directory", *targets],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def make(self, *targets: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = self.make_result(*targets, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(
                f"make {' '.join(targets)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def compose(
        self, *args: str, check: bool = True, timeout: float = 180, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(ROOT / "compose" / "lab.sh"), "compose", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def meshctl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", "manager", "meshctl", *args, stdin=stdin, check=check)

    def get(
        self,
        path: str = "/productpage",
        host: str = "bookinfo.local",
        session: requests.Session | None = None,
        timeout: float = 15,
    ) -> requests.Response:
        client = session or requests
        return client.get(f"{self.gateway}{path}", headers={"Host": host}, timeout=timeout)

    def running_containers(self) -> list[str]:
        out = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()


def lab_env(
    ports: tuple[int, int, int, int, int], config_dir: Path, project: str
) -> dict[str, str]:
    """The environment of one e2e compose lab: its ports (gateway, gateway admin, Locust,
    Prometheus, console), config directory and project."""
    gateway, admin, locust, prometheus, console = ports
    # make targets find the running lab themselves: an empty mesh directory, so a local lab
    # in this checkout (.mesh) is never "the other lab" of an e2e session.
    no_local_lab = config_dir.parent / f"{config_dir.name}-no-local-lab"
    no_local_lab.mkdir(exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if k != "LAB"},
        "MESH_DIR": str(no_local_lab),
        "GATEWAY_PORT": str(gateway),
        "LOCUST_PORT": str(locust),
        "GATEWAY_ADMIN_PORT": str(admin),
        "PROMETHEUS_PORT": str(prometheus),
        "CONSOLE_PORT": str(console),
        "MESH_CONFIG_DIR": str(config_dir),
        "MESHLAB_PROJECT": project,
    }


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeLab]:
    _require_docker()
    config_dir = tmp_path_factory.mktemp("lab-config")
    compose_lab = ComposeLab(
        lab_env(
            (GATEWAY_PORT, GATEWAY_PORT + 1, LOCUST_PORT, PROMETHEUS_PORT, CONSOLE_PORT),
            config_dir,
            PROJECT,
        ),
        config_dir,
    )
    compose_lab.make("up", timeout=2400)
    try:
        yield compose_lab
    finally:
        compose_lab.make("down", timeout=300)
        left = compose_lab.running_containers()
        assert not left, f"make down left containers running: {left}"
