"""The local lab's process handling on small stand-in processes (no Bookinfo): a child that
ignores SIGTERM is killed after the grace, and a grandchild that escaped into its own session
is still reaped — nothing is left behind."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from mesh.lab.local import Child, free_ports, port_free, processes_mentioning, stop_children

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
# A grandchild in a new session: not in our process group, so killpg alone would miss it.
subprocess.Popen([sys.executable, "-c", "import signal, time; "
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)",
                  sys.argv[1]], start_new_session=True)
print("started", flush=True)
time.sleep(120)
"""


def test_stop_children_leaves_nothing_behind(tmp_path: Path) -> None:
    marker = f"meshlab-test-{os.getpid()}-{time.monotonic_ns()}"
    child = Child(
        "stubborn",
        [sys.executable, "-c", STUBBORN, marker],
        dict(os.environ),
        tmp_path / "stubborn.log",
    )
    child.start()
    deadline = time.monotonic() + 10
    while "started" not in child.tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert len(processes_mentioning(marker)) >= 1
    started = time.monotonic()
    stop_children([child], grace=1.0)
    assert time.monotonic() - started < 8
    assert child.proc is not None and child.proc.returncode == -signal.SIGKILL
    time.sleep(0.2)
    assert processes_mentioning(marker) == []


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(port_free(p) for p in ports)
