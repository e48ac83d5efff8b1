"""The control plane on the live lab: invalid config is refused and routing continues on the
last good config; the manager killed and restarted while traffic flows (no failed request,
versions continue); the meshctl commands against the running mesh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mesh.meshdir import read_json

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

V1_PAGE = ["productpage-v1", "details-v1", "reviews-v1"]

BAD_SUBSET = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v9
"""


def meshctl(lab, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESH_DIR": str(lab.mesh.root)}
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli.meshctl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def config_state(lab) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(Path(lab.mesh.config).glob("*.y*ml"))}


def published_version(lab) -> int:
    return int(read_json(lab.mesh.snapshot_file)["version"])


def test_invalid_apply_writes_nothing_and_routing_continues(gw, tmp_path):
    lab = gw.lab
    before, version = config_state(lab), published_version(lab)
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SUBSET)
    result = meshctl(lab, "apply", "-f", str(bad), "--wait")
    assert result.returncode == 1, result
    assert "IST0101" in result.stderr and 'subset "v9"' in result.stderr
    assert "nothing applied" in result.stderr
    assert "Traceback" not in result.stderr
    assert config_state(lab) == before
    assert published_version(lab) == version
    assert gw.served_by(gw.get()) == V1_PAGE


def test_hand_edited_invalid_file_is_refused_and_status_says_why(gw):
    lab = gw.lab
    version = published_version(lab)
    hand = Path(lab.mesh.config) / "zz-hand-edit.yaml"
    hand.write_text(BAD_SUBSET.replace("name: reviews", "name: reviews-typo"))
    try:
        gw.wait_until(
            lambda: (read_json(lab.mesh.manager_status) or {}).get("rejected") is not None,
            what="the manager to refuse the file",
        )
        rejected = read_json(lab.mesh.manager_status)["rejected"]
        assert any(
            i["file"].endswith("zz-hand-edit.yaml") and "subset" in i["path"]
            for i in rejected["issues"]
        ), rejected
        status = meshctl(lab, "status")
        assert "REJECTED" in status.stdout and "zz-hand-edit.yaml" in status.stdout
        assert 'subset "v9"' in status.stdout
        assert published_version(lab) == version  # nothing published
        for _ in range(5):
            assert gw.served_by(gw.get()) == V1_PAGE
        # While the config is refused, further applies are refused too (whole-config check).
        blocked = meshctl(lab, "apply", "-f", str(gw.scenario("canary-70-30")))
        assert blocked.returncode == 1 and "zz-hand-edit.yaml" in blocked.stderr
    finally:
        hand.unlink()
    gw.wait_until(
        lambda: (read_json(lab.mesh.manager_status) or {}).get("rejected") is None,
        what="the manager to accept the config again",
    )


def test_meshctl_reads_the_live_mesh(gw):
    lab = gw.lab
    ps = meshctl(lab, "proxy-status")
    assert ps.returncode == 0, ps.stderr
    assert ps.stdout.count("SYNCED") == 10, ps.stdout
    eps = meshctl(lab, "endpoints", "reviews")
    assert eps.returncode == 0
    assert {"reviews-v1", "reviews-v2", "reviews-v3"} <= set(eps.stdout.split())
    got = meshctl(lab, "get", "vs", "reviews", "-o", "json")
    assert json.loads(got.stdout)["metadata"]["name"] == "reviews"
    table = meshctl(lab, "get", "dr")
    assert "productpage" in table.stdout and table.returncode == 0
    missing = meshctl(lab, "get", "vs", "nope")
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    piped = meshctl(lab, "apply", "-f", "-", "--wait", stdin=gw.scenario("dark-launch").read_text())
    assert piped.returncode == 0 and "configured" in piped.stdout and "synced" in piped.stdout
    status = subprocess.run(
        [sys.executable, "-m", "mesh.cli.meshlab", "status", "--mesh-dir", str(lab.mesh.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr


class Traffic:
    """Requests through the gateway in a thread, counting every failure."""

    def __init__(self, gw) -> None:
        self.gw = gw
        self.done = threading.Event()
        self.total = 0
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = self.gw.client()
        while not self.done.is_set():
            try:
                response = self.gw.get(session=session)
                if response.status_code != 200 or len(self.gw.served_by(response)) != 3:
                    self.failures.append(f"{response.status_code} {response.headers}")
            except Exception as exc:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(exc))
            self.total += 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=30)


def test_manager_killed_and_restarted_while_traffic_flows(gw):
    lab = gw.lab
    if not getattr(lab, "owned", False):
        pytest.skip("needs a lab this session started (not MESHLAB_TEST_ATTACH)")
    version = published_version(lab)
    with Traffic(gw) as traffic:
        time.sleep(1.0)
        lab.kill_manager()
        time.sleep(1.5)  # sidecars keep serving their last snapshot
        lab.start_manager()
        gw.wait_until(
            lambda: (read_json(lab.mesh.manager_status) or {}).get("pid") == lab.manager.proc.pid,
            what="the new manager's status",
        )
        time.sleep(1.0)
        assert published_version(lab) == version  # nothing changed: nothing re-published
        lab.kill_manager()
        code, output = lab.apply(gw.scenario("canary-70-30"), wait=False)
        assert code == 0, output
        time.sleep(1.0)
        assert published_version(lab) == version  # nobody publishes while the manager is down
        lab.start_manager()
        gw.wait_until(lambda: published_version(lab) == version + 1, what="the next version")
        lab.wait_synced(time.monotonic() + 20)
        time.sleep(1.0)
    assert traffic.total > 20
    assert traffic.failures == []
    status = read_json(lab.mesh.manager_status)
    assert status["version"] == version + 1 and status["rejected"] is None
