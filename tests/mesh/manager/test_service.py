import asyncio
import io
import json
import threading
import time

import pytest

from mesh.manager.service import Manager, ManagerTimings, single_instance
from mesh.meshdir import MeshDir, read_json
from mesh.snapshot import Snapshot
from tests.helpers import COURSE

DR = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
"""
VS = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: SUBSET}
"""


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def mesh(tmp_path):
    return MeshDir(tmp_path).create()


def register(mesh, pod, *, ready=True, heartbeat=1000.0, ttl=10.0, version="v1"):
    record = {
        "pod": pod, "service": "reviews", "labels": {"app": "reviews", "version": version},
        "address": "127.0.0.1", "port": 9000 + len(pod), "ready": ready,
        "heartbeat": heartbeat, "ttl": ttl, "role": "sidecar",
    }  # fmt: skip
    (mesh.registry / f"{pod}.json").write_text(json.dumps(record))


def snapshot(mesh) -> Snapshot:
    return Snapshot.from_json(mesh.snapshot_file.read_bytes())


def manager(mesh, clock=None):
    return Manager(mesh, topology=COURSE, clock=clock or Clock(), log=io.StringIO())


def test_publishes_once_then_only_on_change(mesh):
    m = manager(mesh)
    first = m.evaluate()
    assert first is not None and first.version == 1 and first.resources == ()
    assert m.evaluate() is None
    (mesh.config / "dr.yaml").write_text(DR)
    (mesh.config / "vs.yaml").write_text(VS.replace("SUBSET", "v1"))
    second = m.evaluate()
    assert second is not None and second.version == 2
    assert [r["kind"] for r in snapshot(mesh).resources] == ["DestinationRule", "VirtualService"]
    status = read_json(mesh.manager_status)
    assert status["version"] == 2 and status["hash"] == second.hash and status["rejected"] is None


def test_invalid_config_is_never_published_and_status_says_why(mesh):
    m = manager(mesh)
    (mesh.config / "dr.yaml").write_text(DR)
    (mesh.config / "vs.yaml").write_text(VS.replace("SUBSET", "v1"))
    good = m.evaluate()
    (mesh.config / "vs.yaml").write_text(VS.replace("SUBSET", "v9"))
    assert m.evaluate() is None
    assert snapshot(mesh).version == good.version
    rejected = read_json(mesh.manager_status)["rejected"]
    issue = rejected["issues"][0]
    assert issue["code"] == "IST0101" and issue["file"].endswith("vs.yaml")
    assert "subset" in issue["path"] and "v9" in issue["message"]
    # The refusal keeps its first time while it stays the same.
    m.clock.now += 5
    m.evaluate()
    assert read_json(mesh.manager_status)["rejected"]["at"] == rejected["at"]
    (mesh.config / "vs.yaml").write_text(VS.replace("SUBSET", "v1"))
    assert m.evaluate() is None  # back to the published content: nothing new to publish
    assert read_json(mesh.manager_status)["rejected"] is None


def test_subset_without_pods_does_not_block(mesh):
    register(mesh, "reviews-v1")
    (mesh.config / "dr.yaml").write_text(DR.replace("version: v1", "version: v7"))
    (mesh.config / "vs.yaml").write_text(VS.replace("SUBSET", "v1"))
    published = manager(mesh).evaluate()
    assert published is not None and len(published.resources) == 2
    warnings = read_json(mesh.manager_status)["warnings"]
    assert any(w["code"] == "IST0173" for w in warnings)


def test_endpoints_follow_readiness_and_ttl_even_while_config_is_refused(mesh):
    clock = Clock(1000.0)
    m = manager(mesh, clock)
    register(mesh, "reviews-v1", heartbeat=1000.0, ttl=10)
    register(mesh, "reviews-v2", heartbeat=1000.0, ttl=10, version="v2")
    (mesh.config / "dr.yaml").write_text(DR)
    m.evaluate()
    assert [e.pod for e in snapshot(mesh).endpoints] == ["reviews-v1", "reviews-v2"]
    (mesh.config / "broken.yaml").write_text("kind: VirtualService\nmetadata: {name: x}\nspec: [")
    register(mesh, "reviews-v2", ready=False, heartbeat=1001.0, version="v2")
    published = m.evaluate()
    assert published is not None and [e.pod for e in published.endpoints] == ["reviews-v1"]
    assert [r["kind"] for r in published.resources] == ["DestinationRule"]  # last good config
    assert read_json(mesh.manager_status)["rejected"] is not None
    clock.now = 1010.5  # reviews-v1's heartbeat (1000 + ttl 10) has expired
    assert m.expiry == 1010.0
    published = m.evaluate()
    assert published is not None and published.endpoints == ()


def test_version_continues_across_restarts(mesh):
    (mesh.config / "dr.yaml").write_text(DR)
    manager(mesh).evaluate()
    manager(mesh).evaluate()  # a restart with nothing changed publishes nothing
    assert snapshot(mesh).version == 1
    (mesh.config / "dr.yaml").write_text(DR.replace("name: v1", "name: v2"))
    assert manager(mesh).evaluate().version == 2
    # A lost or corrupt snapshot file: the version still continues from status/manager.json.
    mesh.snapshot_file.write_text("{garbage")
    assert manager(mesh).evaluate().version == 3


def test_a_second_manager_on_the_same_directory_is_refused(mesh):
    with single_instance(mesh):
        with pytest.raises(RuntimeError, match="already running"):
            with single_instance(mesh):
                pass


def test_the_loop_reacts_to_files_and_to_expiring_records(mesh):
    stop = asyncio.Event()
    m = Manager(
        mesh,
        ManagerTimings(quiet=0.05, max_delay=0.3, poll=0.5, heartbeat=0.2),
        topology=COURSE,
        log=io.StringIO(),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(m.run(stop),), daemon=True)
    thread.start()
    try:
        wait_for(lambda: mesh.snapshot_file.exists())
        started = time.monotonic()
        (mesh.config / "dr.yaml").write_text(DR)
        wait_for(lambda: len(snapshot(mesh).resources) == 1)
        assert time.monotonic() - started < 1.0
        register(mesh, "reviews-v1", heartbeat=time.time(), ttl=1.0)
        wait_for(lambda: len(snapshot(mesh).endpoints) == 1)
        # No file event when a record expires: the TTL timer alone must drop it.
        wait_for(lambda: len(snapshot(mesh).endpoints) == 0, timeout=3.0)
        beat = read_json(mesh.manager_status)["heartbeat"]
        wait_for(lambda: read_json(mesh.manager_status)["heartbeat"] > beat)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
    assert not thread.is_alive()


def wait_for(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_vanished_directory_publishes_nothing(mesh):
    import shutil

    (mesh.config / "dr.yaml").write_text(DR)
    register(mesh, "reviews-v1")
    m = manager(mesh)
    first = m.evaluate()
    shutil.rmtree(mesh.registry)
    shutil.rmtree(mesh.config)
    assert m.evaluate() is None
    assert snapshot(mesh).hash == first.hash
    assert read_json(mesh.manager_status)["rejected"] is not None
    mesh.create()  # back (meshctl apply and the sidecars recreate them)
    (mesh.config / "dr.yaml").write_text(DR)
    register(mesh, "reviews-v1")
    assert m.evaluate() is None  # the same content: nothing new
    assert read_json(mesh.manager_status)["rejected"] is None


def test_the_manager_watches_only_the_files_it_reads(tmp_path):
    from mesh.manager.service import dir_signature, relevant

    for name in ("a.yaml", ".a.yaml.123.tmp", ".lock"):
        (tmp_path / name).write_text("x")
    assert relevant("/x/config/a.yaml", (".yaml",)) and not relevant("/x/.a.yaml.1.tmp", (".yaml",))
    before = dir_signature(tmp_path, (".yaml",))
    (tmp_path / ".a.yaml.123.tmp").write_text("a temp file changing")
    assert dir_signature(tmp_path, (".yaml",)) == before
    (tmp_path / "a.yaml").write_text("changed")
    assert dir_signature(tmp_path, (".yaml",)) != before
