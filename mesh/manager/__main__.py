"""``python -m mesh.manager --mesh-dir DIR``: run the control plane until SIGINT/SIGTERM.

The program wires the manager to the lab's workloads (``--workloads FILE...``, else
``$MESHLAB_WORKLOADS``, else the course profile; see ``mesh.lab.workloads``): the Services it
knows and the pods it assumes while none has registered. It writes them to
``$MESH_DIR/topology.json`` for meshctl, as the API server holds a cluster's workloads.

With ``--ca-dir DIR`` (env ``MESH_CA_DIR``) the manager is also the mesh CA
(``mesh.manager.ca``): its root is kept in DIR — never under ``$MESH_DIR``: compose mounts a
volume into the manager alone, the local lab a 0700 directory beside the mesh directory — or
comes from Istio's ``cacerts`` files (``--cacerts DIR``, env ``MESH_CACERTS``). Workload
certificates live ``MESH_CERT_TTL`` (24h).

``--healthcheck`` exits 0 when a manager on DIR wrote its heartbeat within the last
``--max-age`` seconds (for compose's ``healthcheck``), else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mesh.lab.workloads import WorkloadError, lab_entries, lab_workloads, topology_from_env
from mesh.manager.ca import CAShell
from mesh.manager.service import Manager, ManagerTimings, single_instance
from mesh.meshdir import MeshDir, atomic_write, read_manager_status
from mesh.security.knobs import KnobError, cert_ttl
from mesh.snapshot import topology_to_json


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.manager",
        description="The mesh manager: validates $MESH_DIR/config and publishes snapshots.",
    )
    parser.add_argument("--mesh-dir", default=os.environ.get("MESH_DIR"), help="env MESH_DIR")
    parser.add_argument("--debounce", type=float, default=0.1, help="quiet time, seconds")
    parser.add_argument("--poll", type=float, default=1.0, help="safety-net poll, seconds")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="status heartbeat, seconds")
    parser.add_argument(
        "--healthcheck", action="store_true", help="exit 0 if a manager is alive on DIR"
    )
    parser.add_argument("--max-age", type=float, default=5.0, help="for --healthcheck")
    parser.add_argument(
        "--workloads", nargs="+", metavar="FILE",
        help="the lab's manifests (default: $MESHLAB_WORKLOADS, else the course profile)",
    )  # fmt: skip
    parser.add_argument(
        "--ca-dir", default=os.environ.get("MESH_CA_DIR") or None,
        help="be the mesh CA, its root kept here (env MESH_CA_DIR; outside the mesh dir)",
    )  # fmt: skip
    parser.add_argument(
        "--cacerts", default=os.environ.get("MESH_CACERTS") or None,
        help="a supplied CA in Istio's cacerts layout (env MESH_CACERTS)",
    )  # fmt: skip
    return parser


def inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def healthcheck(mesh: MeshDir, max_age: float) -> int:
    status = read_manager_status(mesh)
    if status is None or status.heartbeat is None:
        print("manager: no heartbeat", file=sys.stderr)
        return 1
    age = time.time() - status.heartbeat
    if age > max_age:
        print(f"manager: last heartbeat {age:.1f} s ago", file=sys.stderr)
        return 1
    return 0


async def _serve(manager: Manager) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await manager.run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.mesh_dir:
        print("manager: --mesh-dir (or MESH_DIR) is required", file=sys.stderr)
        return 2
    if args.healthcheck:
        return healthcheck(MeshDir(Path(args.mesh_dir)), args.max_age)
    for name in ("debounce", "poll", "heartbeat"):
        if not 0 < getattr(args, name) <= 60:
            print(f"manager: --{name} must be within (0, 60] seconds", file=sys.stderr)
            return 2
    try:
        mesh = MeshDir(Path(args.mesh_dir)).create()
    except OSError as exc:
        print(f"manager: cannot use {args.mesh_dir}: {exc}", file=sys.stderr)
        return 2
    try:
        topology = (
            lab_workloads(lab_entries(files=args.workloads)).topology
            if args.workloads
            else topology_from_env()
        )
    except WorkloadError as exc:
        print(f"manager: {exc}", file=sys.stderr)
        return 2
    ca = None
    if args.ca_dir or args.cacerts:
        ca_dir = Path(args.ca_dir or args.cacerts)
        for given in filter(None, (args.ca_dir, args.cacerts)):
            if inside(Path(given), mesh.root):
                print(
                    f"manager: the CA directory {given} is inside the mesh directory, which "
                    "every pod reads: keep the CA's key elsewhere",
                    file=sys.stderr,
                )
                return 2
        try:
            ttl = cert_ttl(os.environ)
        except KnobError as exc:
            print(f"manager: {exc}", file=sys.stderr)
            return 2
        ca = CAShell(
            mesh,
            ca_dir,
            topology,
            ttl,
            cacerts=Path(args.cacerts) if args.cacerts else None,
        )
    settings = ManagerTimings(
        quiet=args.debounce,
        max_delay=max(0.5, args.debounce * 5),
        poll=args.poll,
        heartbeat=args.heartbeat,
    )
    try:
        with single_instance(mesh):
            atomic_write(mesh.topology_file, json.dumps(topology_to_json(topology), indent=1))
            manager = Manager(mesh, settings, topology=topology, ca=ca)
            manager._say(f"watching {mesh.root} (pid {os.getpid()})")
            if ca is not None:
                ca.say = manager._say
                ca.load()
            asyncio.run(_serve(manager))
    except RuntimeError as exc:
        print(f"manager: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
