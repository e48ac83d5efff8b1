"""Run docs/workshop.md's commands against a lab: the guide cannot drift from the lab.

The guide's conventions (also written at its top): every line of a ```sh block is a command,
run in order from the repository root with ``bash -c``; a trailing comment steers the run:
``# local lab`` / ``# compose lab`` (only on that lab), ``# own terminal`` (long-running:
started in the background, stopped with Ctrl-C at the end, which must be a clean stop),
``# exit N`` (the expected exit status, default 0), ``# fails`` (any but 0: make says 2). ``localhost:8080`` / ``localhost:8089``
become the ports of the lab under test, ``mine.yaml`` a scratch file.

Primitives: ``Step`` and ``steps(text)`` (the parse), ``GuideRun`` (runs steps, keeps a
transcript for the failure message), ``local_env`` (a local lab's own directory and ports,
for the tests that drive one with make).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mesh.lab.local import free_ports

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "workshop.md"
LABS = ("local", "compose")
# What a long-running command prints once it is up (or it exits: make locust, compose lab).
READY = re.compile(r"lab ready|Starting web interface|Locust runs in the compose lab")


@dataclass(frozen=True)
class Step:
    line: int
    command: str
    labs: tuple[str, ...] = LABS
    background: bool = False
    exit_code: int = 0  # -1: any failure


def steps(text: str) -> list[Step]:
    found = []
    in_sh = False
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("```"):
            in_sh = not in_sh and raw.strip() == "```sh"
            continue
        if not in_sh or not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = re.match(r"^(.*?)(?:\s+#\s*(.*))?$", raw)
        assert parts is not None
        command, note = parts.group(1), parts.group(2) or ""
        labs = tuple(lab for lab in LABS if note.startswith(f"{lab} lab")) or LABS
        exit_code = re.search(r"\bexit (\d+)", note)
        found.append(
            Step(
                number,
                command.strip(),
                labs,
                "own terminal" in note,
                int(exit_code.group(1)) if exit_code else (-1 if "fails" in note else 0),
            )
        )
    return found


@dataclass
class GuideRun:
    lab: str
    env: dict[str, str]
    substitutions: dict[str, str]
    skip: dict[str, str] = field(default_factory=dict)  # command -> why not run here
    transcript: list[str] = field(default_factory=list)
    background: list[tuple[Step, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    scratch: Path = Path("/tmp")

    def command(self, step: Step) -> str:
        text = step.command
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run(self, step: Step, timeout: float = 900) -> None:
        if self.lab not in step.labs:
            return
        if step.command in self.skip:
            self.transcript.append(
                f"[{step.line}] skipped: {step.command}: {self.skip[step.command]}"
            )
            return
        command = self.command(step)
        if step.background:
            self._start(step, command, timeout)
            return
        started = time.monotonic()
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        output = (done.stdout + done.stderr).strip()
        self.transcript.append(
            f"[{step.line}] $ {command}  -> exit {done.returncode} "
            f"({time.monotonic() - started:.0f} s)\n{output[-1500:]}"
        )
        assert self.expected(step, done.returncode), self.failure(step, done.returncode)
        assert "Traceback" not in output, self.failure(step, done.returncode)

    def _start(self, step: Step, command: str, timeout: float) -> None:
        log = self.scratch / f"background-{step.line}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        self.background.append((step, proc, log))
        deadline = time.monotonic() + timeout
        while not READY.search(log.read_text(errors="replace")):
            if proc.poll() is not None:
                break
            assert time.monotonic() < deadline, self.failure(step, None, log)
            time.sleep(0.5)
        self.transcript.append(f"[{step.line}] $ {command} &  (up)")
        if proc.poll() is not None:
            assert self.expected(step, proc.returncode), self.failure(step, proc.returncode, log)

    def stop_background(self) -> list[str]:
        """Ctrl-C every long-running command still running (its whole process group, as a
        terminal does); return the problems: an unclean stop, an error, a traceback."""
        problems = []
        for step, proc, log in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    problems.append(f"{step.command}: still running 60 s after Ctrl-C")
                    continue
            output = log.read_text(errors="replace")
            # make dies of the SIGINT itself (-2) once its command stopped cleanly.
            if proc.returncode not in (0, -signal.SIGINT) or "make: ***" in output:
                problems.append(f"{step.command}: exit {proc.returncode}\n{output[-1500:]}")
            if "Traceback" in output:
                problems.append(f"{step.command}: traceback\n{output[-1500:]}")
        return problems

    @staticmethod
    def expected(step: Step, code: int) -> bool:
        return code != 0 if step.exit_code == -1 else code == step.exit_code

    def failure(self, step: Step, code: int | None, log: Path | None = None) -> str:
        extra = log.read_text(errors="replace")[-2000:] if log else ""
        history = "\n".join(self.transcript[-4:])
        return (
            f"docs/workshop.md line {step.line}: `{step.command}` exited {code}, "
            f"expected {step.exit_code}\n{history}\n{extra}"
        )


def local_env(tmp_path: Path, gateway: int, locust: int) -> dict[str, str]:
    """A local lab of its own: its mesh directory and ports, and a compose project name
    nobody uses, so a compose lab running on this machine is not "the other lab"."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env.pop("LAB", None)
    console, prometheus = free_ports(2)
    env.update(
        MESH_DIR=str(tmp_path / "mesh"),
        GATEWAY_PORT=str(gateway),
        LOCUST_PORT=str(locust),
        CONSOLE_PORT=str(console),
        PROMETHEUS_PORT=str(prometheus),
        MESHLAB_PROJECT=f"meshlab-test-none-{os.getpid()}",
    )
    return env
