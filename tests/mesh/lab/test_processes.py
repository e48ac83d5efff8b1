"""mesh.lab.processes: a child in its own process group, its log, and no descendant left
behind after ``stop_children`` (a grandchild that ignores SIGTERM is killed too)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mesh.lab.processes import Child, descendants, processes_mentioning, stop_children


def test_a_child_logs_and_stops_with_every_descendant(tmp_path: Path) -> None:
    marker = f"meshlab-test-{os.getpid()}-{time.monotonic_ns()}"
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = Child("t", [sys.executable, "-c", script, marker], dict(os.environ), tmp_path / "t.log")
    child.start()
    try:
        deadline = time.monotonic() + 10
        while "started" not in child.tail() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.running
        assert child.proc is not None and len(descendants(child.proc.pid)) == 1
        assert len(processes_mentioning(marker)) == 2
    finally:
        stop_children([child], grace=0.5)
    assert not child.running
    assert processes_mentioning(marker) == []
