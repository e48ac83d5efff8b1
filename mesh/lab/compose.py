"""The compose lab's pods, generated from the workload manifests (one source of truth).

``python -m mesh.lab.compose [--profile P | --workloads FILE...] --out DIR`` (run by
``compose/lab.sh`` inside the lab's image) reads the lab's manifests exactly as
``meshlab up --local`` does and writes into DIR:

- ``pods.yml``: a compose file with one service per app pod (the static
  ``compose/docker-compose.yml`` holds the manager, the gateway and Locust), each the pod
  supervisor ``python -m mesh.lab.pod <pod>`` advertising its compose name;
- ``workloads/``: the manifest files, numbered in load order, mounted read-only at
  ``/lab/workloads`` in every container, with ``env`` (``MESHLAB_WORKLOADS`` for them);
- ``baseline.yaml`` when the profile has a baseline, and ``lab.env`` (the profile, the
  baseline's presence, the pods) for ``lab.sh``.

Bad manifests print every error with file:line and exit 1 before anything starts.
``compose_service(pod)`` and ``pods_compose(topology)`` are the pure part the tests compare
with the manifests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mesh.lab.pod import ADMIN_PORT
from mesh.lab.workloads import (
    DEFAULT_PROFILE,
    Entry,
    WorkloadError,
    entries_env,
    lab_entries,
    lab_workloads,
    load_profile,
)
from mesh.topology import Pod, Topology

LAB_MOUNT = "/lab"
# A pod's private secrets (the agent's key and certificate): a tmpfs of its own container,
# as Kubernetes' in-memory volume; never the shared mesh volume.
SECRETS_DIR = "/var/run/meshlab/secrets"
SECRETS_TMPFS = f"{SECRETS_DIR}:uid=${{MESHLAB_UID:-1000}},gid=${{MESHLAB_GID:-1000}},mode=0700"
OUTBOUND = "http://127.0.0.1:15001"
# The sidecar admin listener's /ready: 200 once the app passes its readiness probe and the
# sidecar runs a snapshot (the proxy handler is emptied so no inherited HTTP_PROXY applies).
HEALTHCHECK = {
    "test": [
        "CMD",
        "python",
        "-S",
        "-c",
        "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open("
        f"'http://127.0.0.1:{ADMIN_PORT}/ready', timeout=2)",
    ],
    "interval": "5s",
    "timeout": "3s",
    "retries": 3,
    "start_period": "120s",
}


def compose_name(pod: Pod) -> str:
    """A pod's compose service and host name (``httpbin.foo`` → ``httpbin-foo``)."""
    return pod.name.replace(".", "-")


def compose_service(pod: Pod, workloads_env: str) -> dict[str, Any]:
    name = compose_name(pod)
    # A pod with a sidecar runs its agent (mesh.lab.pod): key and certificate in its tmpfs.
    secrets = pod.proxy != "none"
    service: dict[str, Any] = {
        "image": "${MESHLAB_IMAGE:-meshlab:latest}",
        "init": True,
        # The invoking user's ids (compose/lab.sh), so the config dir stays theirs alone.
        "user": "${MESHLAB_UID:-1000}:${MESHLAB_GID:-1000}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "stop_grace_period": "10s",
        "hostname": name,
        "labels": {
            "meshlab.pod": pod.name,
            "meshlab.namespace": pod.namespace,
            "meshlab.sidecar": str(pod.proxy == "sidecar").lower(),
        },
        "environment": {
            "MESH_DIR": "/mesh",
            # A uid with no passwd entry in the image gets HOME=/; nothing may write there.
            "HOME": "/tmp",
            # Every proxy sends its Zipkin spans to the console's collector.
            "ZIPKIN_ADDRESS": "console:20001",
            "MESHLAB_WORKLOADS": workloads_env,
            # The agent renews at this share of the lifetime left (the manager signs the TTL).
            "MESH_CERT_GRACE_RATIO": "${MESH_CERT_GRACE_RATIO:-0.5}",
            # `docker exec` (make exec) runs commands with the pod's network, as the app has
            # it: through its sidecar (or, without one, the node agent's plain routing).
            "http_proxy": OUTBOUND,
            "HTTP_PROXY": OUTBOUND,
            "no_proxy": "localhost,127.0.0.1",
            "NO_PROXY": "localhost,127.0.0.1",
        },
        "volumes": [
            "mesh:/mesh",
            "${MESH_CONFIG_DIR:-../lab-config}:/mesh/config",
            "${MESHLAB_LAB_DIR}:/lab:ro",
        ],
        "depends_on": {"manager": {"condition": "service_healthy"}},
        "healthcheck": HEALTHCHECK,
        "command": [
            "python",
            "-m",
            "mesh.lab.pod",
            pod.name,
            "--mesh-dir",
            "/mesh",
            "--advertise-address",
            name,
            *(["--secrets-dir", SECRETS_DIR] if secrets else []),
        ],  # fmt: skip
    }
    if secrets:
        service["tmpfs"] = [SECRETS_TMPFS]
    return service


def pods_compose(topology: Topology, workloads_env: str) -> dict[str, Any]:
    """The compose file of the app pods (format 2.4, as the static file)."""
    return {
        "version": "2.4",
        "services": {
            compose_name(pod): compose_service(pod, workloads_env) for pod in topology.app_pods
        },
    }


def mounted_entries(entries: Sequence[Entry]) -> tuple[list[Entry], list[tuple[Path, str]]]:
    """The entries as the containers see them (copies under /lab/workloads, numbered in load
    order) and (source, copy name) pairs to write."""
    mounted: list[Entry] = []
    copies: list[tuple[Path, str]] = []
    for index, entry in enumerate(entries):
        copy = f"{index:02d}-{entry.path.name}"
        copies.append((entry.path, copy))
        mounted.append(Entry(Path(LAB_MOUNT, "workloads", copy), entry.namespace))
    return mounted, copies


def write_lab(out: Path, profile: str | None, files: Sequence[str]) -> Topology:
    entries = lab_entries(profile, files)
    topology = lab_workloads(entries).topology  # raises WorkloadError before any write
    baseline = load_profile(profile).baseline if profile and not files else None
    target = out / "workloads"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    mounted, copies = mounted_entries(entries)
    for source, copy in copies:
        shutil.copyfile(source, target / copy)
    env = entries_env(mounted)
    (target / "env").write_text(env + "\n")
    (out / "pods.yml").write_text(
        "# Generated by python -m mesh.lab.compose from the workload manifests: do not edit.\n"
        + json.dumps(pods_compose(topology, env), indent=1)
        + "\n"
    )
    baseline_file = out / "baseline.yaml"
    baseline_file.unlink(missing_ok=True)
    if baseline is not None:
        shutil.copyfile(baseline, baseline_file)
    pods = " ".join(compose_name(p) for p in topology.app_pods)
    (out / "lab.env").write_text(
        f"MESHLAB_LAB_PROFILE={profile or ''}\n"
        f"MESHLAB_LAB_BASELINE={'1' if baseline is not None else ''}\n"
        f"MESHLAB_LAB_PODS='{pods}'\n"
        f"MESHLAB_WORKLOADS_ENV='{env}'\n"
    )
    return topology


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.lab.compose",
        description="Generate the compose lab's pods from the workload manifests.",
    )
    parser.add_argument("--profile", help="workload profile (default: course)")
    parser.add_argument("--workloads", nargs="+", default=[], metavar="FILE")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    args = parser.parse_args(argv)
    if args.profile and args.workloads:
        parser.error("give --profile or --workloads, not both")
    try:
        profile = None if args.workloads else (args.profile or DEFAULT_PROFILE)
        topology = write_lab(args.out, profile, args.workloads)
    except WorkloadError as exc:
        print(f"meshlab: {exc}", file=sys.stderr)
        return 1
    what = f"profile {args.profile or 'course'}" if not args.workloads else "workloads"
    print(
        f"[lab] {what}: {len(topology.app_pods)} pods "
        f"({', '.join(p.name for p in topology.app_pods)})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
