"""One local lab for the whole integration session (starting 9 pods, the gateway and the
manager takes a while on two cores), plus helpers to talk to it through the gateway.

``MESHLAB_TEST_ATTACH=DIR:PORT`` runs the lab tests against a lab already started with
``meshlab up --local --mesh-dir DIR --gateway-port PORT`` (faster while iterating); tests
that must own the processes (killing the manager) are skipped then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mesh.lab.local import BASELINE, LocalLab, free_ports
from mesh.manager.observe import MeshState
from mesh.manager.registry import read_registry
from mesh.meshdir import MeshDir

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


class AttachedLab:
    """The parts of ``LocalLab`` the tests use, for a lab this session did not start."""

    owned = False

    def __init__(self, mesh_dir: str, port: int) -> None:
        self.mesh = MeshDir(Path(mesh_dir).resolve())
        self.gateway_url = f"http://127.0.0.1:{port}"

    def apply(self, *paths: Any, **kw: Any) -> tuple[int, str]:
        return LocalLab.apply(self, *paths, **kw)  # type: ignore[arg-type]

    def set_ready(self, pod: str, ready: bool) -> dict[str, Any]:
        records, _ = read_registry(self.mesh.registry)
        record = next(r for r in records if r.pod == pod)
        response = requests.post(
            f"http://{record.address}:{record.port}/health/toggle",
            params={"ready": str(ready).lower()},
            timeout=5,
            proxies={"http": "", "https": ""},
        )
        return dict(response.json())


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    attach = os.environ.get("MESHLAB_TEST_ATTACH")
    if attach:
        directory, _, port = attach.rpartition(":")
        yield AttachedLab(directory, int(port))
        return
    mesh_dir = tmp_path_factory.mktemp("lab") / "mesh"
    instance = LocalLab(mesh_dir, gateway_port=free_ports(1)[0], grace=8.0)
    instance.owned = True  # type: ignore[attr-defined]
    instance.start(timeout=240)
    try:
        yield instance
    finally:
        instance.stop()
    # Stopping the lab leaves nothing behind: no process mentions its mesh directory.
    deadline = time.monotonic() + 5
    while (left := instance.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"processes left behind by the lab: {left}"


@pytest.fixture
def baseline(lab: Any) -> Any:
    """The lab back on ``reset.yaml`` (pruned: whatever a previous test added is gone)."""
    code, output = lab.apply(BASELINE, prune=True)
    assert code == 0, output
    return lab


class Gateway:
    """Real HTTP through the lab's gateway, Bookinfo style."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.url = lab.gateway_url

    @staticmethod
    def scenario(name: str) -> Path:
        return SCENARIOS / f"{name}.yaml"

    @staticmethod
    def served_by(response: requests.Response) -> list[str]:
        header = response.headers.get("x-served-by", "")
        return [p.strip() for p in header.split(",") if p.strip()]

    @staticmethod
    def client(host: str = "bookinfo.local") -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment between us and the gateway
        session.headers["Host"] = host
        return session

    def get(
        self,
        path: str = "/productpage",
        *,
        host: str = "bookinfo.local",
        session: requests.Session | None = None,
        **kw: Any,
    ) -> requests.Response:
        session = session or self.client(host)
        return session.get(self.url + path, headers={"Host": host}, timeout=20, **kw)

    def login(self, user: str = "tester", host: str = "bookinfo.local") -> requests.Session:
        session = self.client(host)
        response = session.post(
            self.url + "/login", data={"username": user, "passwd": "x"}, timeout=20
        )
        assert response.status_code == 200, response.text[:300]
        return session

    def apply(self, name: str, **kw: Any) -> str:
        code, output = self.lab.apply(self.scenario(name), **kw)
        assert code == 0, output
        return output

    def endpoint_pods(self) -> set[str]:
        state = MeshState.read(self.lab.mesh)
        return {e.pod for e in state.snapshot.endpoints} if state.snapshot else set()

    @staticmethod
    def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}")
            time.sleep(0.1)


@pytest.fixture
def gw(baseline: Any) -> Gateway:
    """The gateway of a lab that starts this test on the baseline."""
    return Gateway(baseline)
