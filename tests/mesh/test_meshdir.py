import json
import multiprocessing
import os
from pathlib import Path

import pytest

from mesh.meshdir import (
    MeshDir,
    MeshDirError,
    atomic_write,
    config_lock,
    list_files,
    read_json,
    write_json,
)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.json"
    atomic_write(target, "one")
    inode = target.stat().st_ino
    atomic_write(target, b"two")
    assert target.read_text() == "two"
    assert target.stat().st_ino != inode  # a new inode: directory watchers see a move
    assert os.listdir(tmp_path) == ["x.json"]


def test_read_json_tolerates_missing_and_garbage(tmp_path):
    assert read_json(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_bytes(b"{\xff")
    assert read_json(tmp_path / "bad.json") is None
    (tmp_path / "list.json").write_text("[1]")
    assert read_json(tmp_path / "list.json") is None


def test_hidden_and_temp_files_are_ignored(tmp_path):
    for name in ("a.yaml", ".a.yaml.123.tmp", ".lock", "b.yml", "c.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in list_files(tmp_path, (".yaml", ".yml"))] == ["a.yaml", "b.yml"]


def test_require_says_what_is_missing(tmp_path):
    with pytest.raises(MeshDirError, match="does not exist"):
        MeshDir(tmp_path / "nope").require()
    with pytest.raises(MeshDirError, match="no config/"):
        MeshDir(tmp_path).require()
    assert MeshDir(tmp_path).create().require().config.is_dir()


def _hold(root, ready, release):
    with config_lock(MeshDir(root)):
        ready.set()
        release.wait(10)


def test_exclusive_lock_times_out_and_shared_reader_goes_on(tmp_path):
    mesh = MeshDir(tmp_path).create()
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(MeshDirError, match="holds"):
            with config_lock(mesh, timeout=0.2):
                pass
        with config_lock(mesh, shared=True, timeout=0.2) as locked:
            assert locked is False
    finally:
        release.set()
        holder.join(10)
    with config_lock(mesh, timeout=1) as locked:
        assert locked


def test_atomic_json_leaves_no_temp_files_and_makes_its_directory(tmp_path):
    target = tmp_path / "status" / "p.json"
    for i in range(3):
        write_json(target, {"version": i}, durable=False)
    assert json.loads(target.read_text()) == {"version": 2}
    assert os.listdir(target.parent) == ["p.json"]


def test_the_observers_files_are_where_compose_prometheus_reads_them():
    """compose/prometheus.yml names /mesh/observe/targets.json (the mesh volume at /mesh)."""
    compose = (Path(__file__).resolve().parents[2] / "compose" / "prometheus.yml").read_text()
    mesh = MeshDir(Path("/mesh"))
    assert f'"{mesh.scrape_targets}"' in compose
    assert mesh.config_history == Path("/mesh/observe/history.json")
