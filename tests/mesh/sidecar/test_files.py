"""The writer thread: writes happen in order, and close drains the queue."""

from __future__ import annotations

from pathlib import Path

from mesh.meshdir import write_json
from mesh.sidecar.files import Writer


def test_writer_runs_in_order_and_close_drains(tmp_path: Path):
    writer = Writer()
    seen: list[int] = []
    for i in range(100):
        writer.submit(seen.append, i)
    writer.submit(write_json, tmp_path / "x.json", {"done": True})
    writer.close()
    assert seen == list(range(100)) and (tmp_path / "x.json").exists()
