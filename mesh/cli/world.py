"""Which workloads a meshctl command assumes: the live mesh's, a profile's, or given files.

``meshctl analyze`` and ``route`` validate and simulate against a topology: the one a live
mesh serves (``$MESH_DIR/topology.json``, written by its manager), else the files of
``--workloads FILE...`` or the profile of ``--profile NAME``, else the course profile.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mesh.lab.workloads import WorkloadError, lab_entries, lab_workloads
from mesh.meshdir import MeshDir
from mesh.snapshot import SnapshotError, topology_from_json
from mesh.topology import Topology


def add_workload_options(parser: Any) -> None:
    parser.add_argument(
        "--profile", help="validate against this profile's workloads (default: course)"
    )
    parser.add_argument(
        "--workloads", nargs="+", metavar="FILE", help="validate against these manifests"
    )


def mesh_topology(mesh: MeshDir) -> Topology:
    """The topology a live mesh serves (its manager's ``topology.json``), else the course's."""
    try:
        return topology_from_json(json.loads(mesh.topology_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, SnapshotError):
        return lab_workloads(lab_entries()).topology


def chosen_topology(args: argparse.Namespace) -> Topology:
    """``--workloads`` / ``--profile`` when given, else the live mesh's, else the course's.
    Raises ``WorkloadError`` for manifests that do not load."""
    files = getattr(args, "workloads", None) or ()
    profile = getattr(args, "profile", None)
    if files or profile:
        return lab_workloads(lab_entries(profile, files)).topology
    if getattr(args, "mesh_dir", None):
        return mesh_topology(MeshDir(Path(args.mesh_dir)))
    return lab_workloads(lab_entries()).topology


__all__ = ["WorkloadError", "add_workload_options", "chosen_topology", "mesh_topology"]
