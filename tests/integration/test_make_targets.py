"""Every lab-facing make target on the local lab, started as a trainee starts it (`make
up-local`) and found by the targets themselves: each strategy, reset, readiness-fail/pass,
status, locust, every verify (`make verify-all`), then `make down`. The compose lab's run of
the same targets is tests/e2e/test_make_targets.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mesh.lab.local import free_ports, processes_mentioning
from tests.workshop_guide import local_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ("reset", "dark-launch", "delay", "abort", "blue-green", "blue-green-switch",
              "blue-green-back", "canary-70-30", "canary-5-95", "canary-sticky",
              "circuit-breaker", "readiness")  # fmt: skip


class MakeLab:
    def __init__(self, tmp: Path) -> None:
        self.gateway_port, self.locust_port = free_ports(2)
        self.env = local_env(tmp, self.gateway_port, self.locust_port)
        self.mesh = tmp / "mesh"
        self.log = tmp / "up-local.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def make(self, *targets: str, expect: int = 0, timeout: float = 900) -> str:
        done = subprocess.run(["make", "--no-print-directory", *targets], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == expect, (
            f"make {' '.join(targets)}: {done.returncode}\n{output[-3000:]}"
        )
        assert "Traceback" not in output, output[-3000:]
        return output

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(["make", "up-local"], cwd=ROOT, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 300
        while "lab ready" not in self.log.read_text(errors="replace"):
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=60)

    def get(self, path: str = "/productpage", host: str = "bookinfo.local") -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.gateway_port}{path}", headers={"Host": host},
                            timeout=20, proxies={"http": "", "https": ""})  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeLab]:
    instance = MakeLab(tmp_path_factory.mktemp("make-targets"))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def test_status_finds_the_local_lab(lab: MakeLab) -> None:
    out = lab.make("status")
    assert f"local lab: {lab.mesh}" in out and "all 10 proxies ready and synced" in out


def test_every_strategy_target_applies_to_the_local_lab(lab: MakeLab) -> None:
    for name in STRATEGIES:
        out = lab.make(name)
        assert f"{name} applied to the local lab" in out, out
        assert "synced: version" in out  # meshctl apply --wait returned once every proxy had it
        if name == "blue-green":
            # Host bookinfo.local on v1, and localhost has no route: a 404 that says so.
            assert lab.get().headers["x-served-by"].startswith("productpage-v1")
            miss = lab.get(host="localhost")
            assert miss.status_code == 404 and 'no route: Host "localhost"' in miss.text
            assert "Hosts served: bookinfo.local, test.bookinfo.local" in miss.text
    lab.make("reset")
    assert lab.get().headers["x-served-by"] == "productpage-v1, details-v1, reviews-v1"


def endpoint_pods(mesh: Path) -> set[str]:
    data = json.loads((mesh / "snapshot" / "snapshot.json").read_text())
    return {e["pod"] for e in data["endpoints"] if e.get("ready", True)}


def test_readiness_fail_and_pass(lab: MakeLab) -> None:
    lab.make("readiness")
    assert "reviews-v2" in endpoint_pods(lab.mesh)
    lab.make("readiness-fail")
    deadline = time.monotonic() + 10
    while "reviews-v2" in endpoint_pods(lab.mesh):
        assert time.monotonic() < deadline, "reviews-v2 still an endpoint 10 s after readiness-fail"
        time.sleep(0.2)
    lab.make("readiness-pass")
    deadline = time.monotonic() + 10
    while "reviews-v2" not in endpoint_pods(lab.mesh):
        assert time.monotonic() < deadline, "reviews-v2 not back 10 s after readiness-pass"
        time.sleep(0.2)
    lab.make("reset")


def test_exec_runs_beside_a_pod_through_its_sidecar(lab: MakeLab) -> None:
    out = lab.make("exec", "POD=productpage-v1", "CMD=curl -s -i http://reviews:9080/reviews/0")
    assert "x-served-by: reviews-v1" in out.lower() and '"Reviewer1"' in out


def test_locust_serves_the_room_view_and_stops_cleanly_on_ctrl_c(
    lab: MakeLab, tmp_path: Path
) -> None:
    log = tmp_path / "locust.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["make", "locust"], cwd=ROOT, env=lab.env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{lab.locust_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = requests.get(base + "/", timeout=5, proxies={"http": ""})
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        args = json.loads(re.search(r"window.templateArgs = (.*)", page.text).group(1))
        assert args["num_users"] == 20 and args["host"] == f"http://127.0.0.1:{lab.gateway_port}"
        assert 'id="meshlab-versions-link"' in page.text
        started = requests.post(base + "/swarm", data={"user_count": 10, "spawn_rate": 10},
                                timeout=10, proxies={"http": ""})  # fmt: skip
        assert started.json()["success"]
        lab.make("canary-70-30")
        deadline = time.monotonic() + 60
        while True:  # the new config version is marked and productpage v2 has traffic
            stats = requests.get(base + "/stats/requests", timeout=10, proxies={"http": ""}).json()
            rows = {r["what"]: r for r in stats["extended_stats"][0]["data"]}
            header = next(iter(rows))
            if "productpage (bookinfo.local) v2" in rows and "live since" in header:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(1)
        svg = requests.get(base + "/versions/svg", timeout=10, proxies={"http": ""}).text
        assert "config v" in svg and ">now<" in svg and 'width="100%"' in svg
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole group
        proc.wait(timeout=60)
        lab.make("reset")
    output = log.read_text()
    assert proc.returncode in (0, -signal.SIGINT), output[-2000:]
    assert "make: ***" not in output and "Traceback" not in output, output[-2000:]


def test_every_verify_passes_on_the_local_lab(lab: MakeLab) -> None:
    out = lab.make("verify-all", timeout=2000)
    assert out.count("PASS:") == len(STRATEGIES) + 1  # each strategy, then reset again
    assert "FAIL" not in out


def test_down_stops_the_local_lab(lab: MakeLab) -> None:
    out = lab.make("down")
    assert "meshlab: stopped" in out
    assert lab.proc is not None and lab.proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while (left := processes_mentioning(str(lab.mesh))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []
    assert "no lab is running" in lab.make("down")
    assert "no lab is running" in lab.make("status", expect=2)
