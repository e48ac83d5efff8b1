"""Shared-directory writes: atomic JSON, the background writer, inotify, no-OpenSSL mode."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from mesh.sidecar.files import Writer, write_json_atomic
from mesh.sidecar.inotify import watch_dir


def test_atomic_json_leaves_no_temp_files(tmp_path: Path):
    target = tmp_path / "status" / "p.json"
    for i in range(3):
        write_json_atomic(target, {"version": i})
    assert json.loads(target.read_text()) == {"version": 2}
    assert os.listdir(target.parent) == ["p.json"]


def test_writer_runs_in_order_and_close_drains(tmp_path: Path):
    writer = Writer()
    seen: list[int] = []
    for i in range(100):
        writer.submit(seen.append, i)
    writer.submit(write_json_atomic, tmp_path / "x.json", {"done": True})
    writer.close()
    assert seen == list(range(100)) and (tmp_path / "x.json").exists()


def test_inotify_sees_atomic_replace_in_the_directory(tmp_path: Path):
    async def run() -> int:
        loop = asyncio.get_running_loop()
        hits = []
        watch = watch_dir(loop, tmp_path, lambda: hits.append(1))
        assert watch is not None
        await asyncio.sleep(0.05)
        write_json_atomic(tmp_path / "snapshot.json", {"v": 1})  # temp file + rename: a burst
        await asyncio.sleep(0.2)
        watch.close()
        return len(hits)

    assert asyncio.run(run()) == 1  # the burst is coalesced into one callback


def test_lean_mode_keeps_openssl_out_and_uvloop_working():
    code = (
        "from mesh.sidecar import lean; assert lean.install()\n"
        "import asyncio, hashlib, uvloop, ssl\n"
        "assert hashlib.sha256(b'x').hexdigest().startswith('2d711642')\n"
        "uvloop.run(asyncio.sleep(0))\n"
        "maps = open('/proc/self/maps').read()\n"
        "assert 'libcrypto' not in maps and 'libssl' not in maps, 'OpenSSL loaded'\n"
        "try:\n    ssl.create_default_context()\nexcept RuntimeError:\n    print('stub')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3], check=True)  # fmt: skip
    assert out.stdout.strip() == "stub"
