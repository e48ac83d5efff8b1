"""inotify on a directory: an atomic replace is seen, and a burst is one callback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mesh.meshdir import write_json
from mesh.sidecar.inotify import watch_dir


def test_inotify_sees_atomic_replace_in_the_directory(tmp_path: Path):
    async def run() -> int:
        loop = asyncio.get_running_loop()
        hits = []
        watch = watch_dir(loop, tmp_path, lambda: hits.append(1))
        assert watch is not None
        await asyncio.sleep(0.05)
        write_json(tmp_path / "snapshot.json", {"v": 1})  # temp file + rename: a burst
        await asyncio.sleep(0.2)
        watch.close()
        return len(hits)

    assert asyncio.run(run()) == 1  # the burst is coalesced into one callback
