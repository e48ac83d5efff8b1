"""Config propagation latency and lab memory (a benchmark, not a test).

1. Propagation: the manager plus N plain sidecars (no apps; ready at once) on one mesh
   directory; M applies of a VirtualService whose weights change every time. For each apply,
   the clock starts when ``meshctl apply`` returns (the files are committed) and stops when
   every sidecar's ``status/<pod>.json`` reports the new version. Also split: apply -> the
   manager's snapshot, snapshot -> the last sidecar.
2. Memory: RSS sum of every process of the whole local lab (``meshlab up --local``: manager,
   9 pods = supervisor + gunicorn + sidecar each, gateway), and of the propagation setup.
3. A sidecar's snapshot load: its RSS in the running lab, and the time to load the lab's
   published snapshot (``Snapshot.from_json`` + ``compile_snapshot``, what a sidecar does on
   every change) in a fresh process that imported what a sidecar imports.

Run: ``.venv/bin/python bench/bench_propagation.py [--sidecars 20] [--applies 50]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mesh.config.loader import load_text
from mesh.lab.local import Child, LocalLab, descendants, free_ports, stop_children
from mesh.lab.workloads import lab_entries, lab_workloads
from mesh.manager.apply import apply_resources, snapshot_has
from mesh.manager.observe import MeshState
from mesh.manager.registry import is_fresh
from mesh.meshdir import MeshDir
from mesh.sidecar.memory_budget import proxy_argv

COURSE = lab_workloads(lab_entries("course")).topology

DR = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""
VS = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: W1
    - destination: {host: reviews, subset: v2}
      weight: W2
"""


def memory_kib(pids: set[int]) -> tuple[int, int]:
    """(RSS sum, PSS sum) in KiB. RSS counts shared pages (the interpreter, libraries) once
    per process; PSS splits them among the sharers, so its sum is what the lab really costs."""
    rss = pss = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss, pss


def tree(children: list[Child]) -> set[int]:
    pids: set[int] = set()
    for child in children:
        if child.proc is not None and child.proc.poll() is None:
            pids.add(child.proc.pid)
            pids |= {pid for pid, _start in descendants(child.proc.pid)}
    return pids


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def apply_text(mesh: MeshDir, text: str) -> tuple[float, dict]:
    result = load_text(text, "<bench>")
    outcome = apply_resources(mesh, result.resources, result.issues, COURSE)
    if outcome.code != 0:
        raise SystemExit(f"apply failed: {[str(i) for i in outcome.issues]}")
    return time.perf_counter(), outcome.expected


def wait_all(
    mesh: MeshDir, expected: dict, pods: list[str], timeout: float = 30.0
) -> tuple[float, float]:
    """(time the snapshot held the change, time the last sidecar reported it)."""
    deadline = time.perf_counter() + timeout
    published_at = None
    version = None
    while time.perf_counter() < deadline:
        state = MeshState.read(mesh)
        if (
            version is None
            and state.snapshot is not None
            and snapshot_has(state.snapshot, expected)
        ):
            version, published_at = state.snapshot.version, time.perf_counter()
        if version is not None:
            if all(_applied(state, p) >= version for p in pods):
                LAGGARDS.append(_laggard(state, pods))
                return published_at, time.perf_counter()
        time.sleep(0.002)
    raise SystemExit("timed out waiting for propagation")


LAGGARDS: list[tuple[float, str]] = []


def _applied(state: MeshState, pod: str) -> int:
    status = state.statuses.get(pod)
    return (status.version or 0) if status else 0


def _applied_at(state: MeshState, pod: str) -> float:
    status = state.statuses.get(pod)
    return (status.applied_at or 0.0) if status else 0.0


def _laggard(state: MeshState, pods: list[str]) -> tuple[float, str]:
    """(ms from snapshot generation to the slowest sidecar's applied_at, that pod)."""
    generated = state.snapshot.generated_at if state.snapshot else 0.0
    worst = max(pods, key=lambda p: _applied_at(state, p))
    return (_applied_at(state, worst) - generated) * 1000, worst


def propagation(
    sidecars: int, applies: int, python: str, keep: str | None = None
) -> tuple[list[float], list[float], tuple[int, int]]:
    with contextlib.ExitStack() as stack:
        if keep:
            root = keep
            Path(root).mkdir(parents=True, exist_ok=True)
        else:
            root = stack.enter_context(tempfile.TemporaryDirectory(prefix="meshlab-bench-"))
        mesh = MeshDir(Path(root)).create()
        (mesh.config / "destinationrule-reviews.yaml").write_text(DR)
        children = [
            Child("manager", [python, "-m", "mesh.manager", "--mesh-dir", str(mesh.root)], {},
                  mesh.root / "logs" / "manager.log"),
        ]  # fmt: skip
        ports = free_ports(4 * sidecars)
        pods = [f"reviews-b{i:02d}" for i in range(sidecars)]
        for i, pod in enumerate(pods):
            p = ports[4 * i : 4 * i + 4]
            argv = [
                *proxy_argv(python), "--pod", pod, "--service", "reviews",
                "--labels", f"app=reviews,version=v{1 + i % 2}", "--mesh-dir", str(mesh.root),
                "--inbound-port", str(p[0]), "--app-port", str(p[1]),
                "--outbound-port", str(p[2]), "--admin-port", str(p[3]),
                "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                "--access-log", "off",
            ]  # fmt: skip
            children.append(Child(pod, argv, {}, mesh.root / "logs" / f"{pod}.log"))
        for child in children:
            child.env = {**os.environ, "MESH_DIR": str(mesh.root)}
            child.start()
        try:
            deadline = time.monotonic() + 120
            while True:
                state = MeshState.read(mesh)
                now = time.time()
                ready = {r.pod for r in state.records if r.ready and is_fresh(r, now)}
                rows = {r.pod: r for r in state.rows(now)}
                if set(pods) <= ready and all(rows[p].status == "SYNCED" for p in pods):
                    break
                if time.monotonic() > deadline:
                    missing = sorted(set(pods) - ready) or sorted(
                        p for p in pods if rows.get(p) is None or rows[p].status != "SYNCED"
                    )
                    tail = children[1].tail() if len(children) > 1 else ""
                    raise SystemExit(f"sidecars not ready/synced: {missing}\n{tail}")
                time.sleep(0.2)
            total, manager_part = [], []
            for i in range(applies):
                w1 = (i * 7) % 101
                text = VS.replace("W1", str(w1)).replace("W2", str(100 - w1))
                returned, expected = apply_text(mesh, text)
                published, synced = wait_all(mesh, expected, pods)
                total.append((synced - returned) * 1000)
                manager_part.append((published - returned) * 1000)
                time.sleep(0.05)
            memory = memory_kib(tree(children))
        finally:
            stop_children(children, grace=5)
    return total, manager_part, memory


# Run in a fresh interpreter: what a sidecar imports, then its load of one snapshot, N times.
SNAPSHOT_LOAD = r"""
import json, statistics, sys, time
started = time.perf_counter()
import mesh.sidecar.server
from mesh.routing import ProxyIdentity, compile_snapshot
from mesh.snapshot import Snapshot

imported = time.perf_counter() - started
data = open(sys.argv[1], "rb").read()
proxy = ProxyIdentity("productpage-v1", {"app": "productpage", "version": "v1"})
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    compile_snapshot(Snapshot.from_json(data), proxy)
    times.append(time.perf_counter() - t)
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
print(json.dumps({"import_ms": imported * 1000, "first_ms": times[0] * 1000,
                  "median_ms": statistics.median(times) * 1000, "rss_kib": rss}))
"""


def sidecar_rss_kib(root: str) -> list[int]:
    """RSS of every ``mesh.sidecar`` process (not the gateway) of the lab in ``root``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if (
                b"mesh.sidecar" in argv
                and b"--gateway" not in argv
                and root.encode() in b" ".join(argv)
            ):
                status = Path(f"/proc/{entry}/status").read_text()
                found.append(int(status.split("VmRSS:")[1].split()[0]))
    return found


def lab_memory(python: str) -> tuple[tuple[int, int], int, list[int], bytes]:
    """(RSS and PSS sums, processes, each sidecar's RSS, the published snapshot)."""
    with tempfile.TemporaryDirectory(prefix="meshlab-bench-lab-") as root:
        lab = LocalLab(Path(root) / "mesh", gateway_port=free_ports(1)[0], python=python,
                       out=io.StringIO())  # fmt: skip
        with lab:
            time.sleep(2.0)
            everyone = [*lab.children.values(), *([lab.manager] if lab.manager else [])]
            pids = tree(everyone)
            sidecars = sidecar_rss_kib(str(lab.mesh.root))
            return memory_kib(pids), len(pids), sidecars, lab.mesh.snapshot_file.read_bytes()


def snapshot_load(python: str, snapshot: bytes, runs: int = 200) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        handle.write(snapshot)
        handle.flush()
        out = subprocess.run(
            [python, "-c", SNAPSHOT_LOAD, handle.name, str(runs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sidecars", type=int, default=20)
    parser.add_argument("--applies", type=int, default=50)
    parser.add_argument("--skip-lab", action="store_true", help="skip the whole-lab memory")
    parser.add_argument("--keep", metavar="DIR", help="use DIR as the mesh dir and keep its logs")
    args = parser.parse_args()
    python = sys.executable
    total, manager_part, memory = propagation(args.sidecars, args.applies, python, args.keep)
    sidecar_part = [t - m for t, m in zip(total, manager_part, strict=True)]
    load = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"\nconfig propagation: {args.applies} applies, {args.sidecars} sidecars + manager "
        f"(load average {load} on {os.cpu_count()} cores)"
    )
    print(f"{'stage':<36}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, values in (
        ("apply returned -> snapshot published", manager_part),
        ("snapshot -> last sidecar applied", sidecar_part),
        ("apply returned -> every sidecar", total),
    ):
        print(
            f"{name:<36}{statistics.median(values):>10.1f}{percentile(values, 0.99):>10.1f}"
            f"{max(values):>10.1f}"
        )
    slowest = sorted(LAGGARDS, reverse=True)[:3]
    print("slowest sidecars (snapshot written -> applied_at): " + ", ".join(
        f"{pod} {ms:.0f} ms" for ms, pod in slowest
    ))  # fmt: skip
    print(f"\n{'memory':<52}{'RSS MiB':>10}{'PSS MiB':>10}")
    label = f"manager + {args.sidecars} sidecars ({args.sidecars + 1} processes)"
    print(f"{label:<52}{memory[0] / 1024:>10.0f}{memory[1] / 1024:>10.0f}")
    if not args.skip_lab:
        (rss, pss), processes, sidecars, snapshot = lab_memory(python)
        label = f"whole local lab, meshlab up --local ({processes} processes)"
        print(f"{label:<52}{rss / 1024:>10.0f}{pss / 1024:>10.0f}")
        load = snapshot_load(python, snapshot)
        print(
            f"\nsidecar: RSS in the running lab median {statistics.median(sidecars) / 1024:.1f} "
            f"MiB, max {max(sidecars) / 1024:.1f} MiB ({len(sidecars)} sidecars)"
        )
        print(
            f"snapshot load ({len(snapshot)} bytes, the lab's baseline + endpoints): first "
            f"{load['first_ms']:.1f} ms, median of 200 {load['median_ms']:.2f} ms; the sidecar's "
            f"imports {load['import_ms']:.0f} ms; that process's RSS {load['rss_kib'] / 1024:.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
