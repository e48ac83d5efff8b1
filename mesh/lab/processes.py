"""The lab's processes, as a node runs them: each in its own process group, logging to a
file, stopped with SIGTERM then SIGKILL, with no descendant left behind.

Primitives: ``Child`` (one supervised process: ``start``, ``signal``, ``remember_descendants``
and ``reap_leftovers`` — SIGKILL for descendants that outlived it, matched by pid *and* start
time), ``stop_children(children, grace)``, ``descendants(pid)`` and
``processes_mentioning(text)`` (from Linux's /proc).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GRACE = 10.0


def _die_with_parent() -> None:
    # Linux PR_SET_PDEATHSIG: a child gets SIGTERM if meshlab itself is SIGKILLed.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of every live descendant of ``root`` (Linux /proc)."""
    children: dict[int, list[tuple[int, int]]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            stat = _proc_stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry), stat[1]))
    found: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        for pid, start in children.get(stack.pop(), []):
            if (pid, start) not in found:
                found.add((pid, start))
                stack.append(pid)
    return found


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or environment contains ``text`` (e.g. a lab's mesh dir)."""
    needle = text.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if needle in Path(f"/proc/{entry}/{part}").read_bytes():
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return found


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    seen: set[tuple[int, int]] = field(default_factory=set)
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen(  # noqa: S603 - argv from the topology
            list(self.argv),
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=preexec,
            cwd=REPO_ROOT,
        )
        self.seen = set()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def remember_descendants(self) -> None:
        if self.running and self.proc is not None:
            self.seen |= descendants(self.proc.pid)

    def signal(self, signum: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.proc.pid, signum)

    def reap_leftovers(self) -> None:
        """SIGKILL descendants that outlived the child (same pid *and* start time only)."""
        live = descendants(self.proc.pid) if self.proc is not None and self.running else set()
        for pid, start in self.seen | live:
            stat = _proc_stat(pid)
            if stat is not None and stat[1] == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_children(children: Sequence[Child], grace: float = DEFAULT_GRACE) -> None:
    """SIGTERM every child's group, SIGKILL what is left after ``grace``, reap leftovers."""
    for child in children:
        child.remember_descendants()
    for child in children:
        if child.running:
            child.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(c.running for c in children):
        time.sleep(0.05)
    for child in children:
        if child.running:
            child.signal(signal.SIGKILL)
    for child in children:
        if child.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=5)
        child.reap_leftovers()
        child.close()
