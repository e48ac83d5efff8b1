"""meshctl's topology: the live mesh's topology.json, else --profile/--workloads, else the
course profile."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mesh.cli.world import chosen_topology, mesh_topology
from mesh.meshdir import MeshDir
from mesh.snapshot import topology_to_json
from tests.helpers import COURSE


def test_a_live_mesh_s_topology_json_wins_and_the_course_is_the_fallback(tmp_path: Path) -> None:
    mesh = MeshDir(tmp_path / "mesh").create()
    assert mesh_topology(mesh).service_names == COURSE.service_names
    istio = chosen_topology(argparse.Namespace(profile="istio", workloads=None, mesh_dir=None))
    mesh.topology_file.write_text(json.dumps(topology_to_json(istio)))
    live = mesh_topology(mesh)
    assert sorted(p.name for p in live.app_pods) == sorted(p.name for p in istio.app_pods)
    args = argparse.Namespace(profile=None, workloads=None, mesh_dir=str(mesh.root))
    assert [p.name for p in chosen_topology(args).pods] == [p.name for p in live.pods]
    mesh.topology_file.write_text("{not json")
    assert mesh_topology(mesh).service_names == COURSE.service_names
