"""meshctl's security commands on a live mesh: ``describe pod``, ``tap``, ``reachability``.

- ``meshctl describe pod POD [-n NS]`` (``istioctl x describe pod``): the pod's identity and
  certificate (``$MESH_DIR/certs/<pod>.pem``, public), its Services, the PeerAuthentication
  that decides its mode, the AuthorizationPolicies its proxy enforces, what every other pod
  sends it (auto mTLS or a DestinationRule's ``tls``) and what happens, and the analyzer's
  conflicts — from the applied config (``config/``) and the lab's workloads
  (``mesh.security.describe``).
- ``meshctl tap POD [--follow]``: the first bytes of each new inbound connection of the pod's
  sidecar, from its admin endpoint ``/tap`` (``mesh.sidecar.tap``), read as plaintext HTTP or
  a TLS ClientHello (``mesh.security.wire``): the no-privilege view of what a ``tcpdump`` in
  the pod's network namespace shows in Istio's tasks.
- ``meshctl reachability [--from-app sleep] [--to-app httpbin] [-o json]``: what each call of
  istio.io's matrix should give under the applied config (200, 000 reset, 503 UC/UF), from
  ``mesh.security.mtls`` — the expectation ``make verify-mtls`` compares measurements with.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

from mesh.cli.world import mesh_topology
from mesh.manager.registry import read_registry
from mesh.meshdir import MeshDir, read_manager_status
from mesh.topology import Pod, Topology

NO_MESH = 2
NOT_FOUND = 1


def find_pod(topology: Topology, name: str, namespace: str | None) -> Pod | None:
    """``httpbin.foo``, or ``httpbin -n foo`` (the lab names a namespaced pod
    ``<workload>.<namespace>``), or a workload's only pod (``productpage`` → ``productpage-v1``)."""
    candidates = [name] if namespace is None else [f"{name}.{namespace}", name]
    for candidate in candidates:
        pod = topology.pod(candidate)
        if pod is not None and (namespace is None or pod.namespace == namespace):
            return pod
    same = [
        p
        for p in topology.pods
        if p.workload_name == name and (namespace is None or p.namespace == namespace)
    ]
    return same[0] if len(same) == 1 else None


def certificate_info(mesh: MeshDir, pod: str) -> dict[str, Any] | None:
    """The pod's certificate as the CA issued it (public material only)."""
    info: dict[str, Any] = {}
    status = read_manager_status(mesh)
    issued = ((status.ca or {}).get("issued") or {}) if status else {}
    if isinstance(issued.get(pod), dict):
        info.update(issued[pod])
    try:
        chain = mesh.cert_file(pod).read_bytes()
    except OSError:
        return info or None
    from mesh.security.certs import CertificateError, parse_certificates

    try:
        leaf = parse_certificates(chain)[0]
    except CertificateError as exc:
        info["error"] = str(exc)
        return info
    info["serial"] = f"{leaf.serial_number:x}"
    info["not_after"] = leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if leaf.not_valid_after_utc < datetime.now(UTC):
        info["not_after"] += " (EXPIRED)"
    return info


def _live_topology(mesh: MeshDir) -> Topology:
    topology = mesh_topology(mesh)
    records, _ = read_registry(mesh.registry)
    known = {p.name for p in topology.pods}
    extra = [
        Pod(
            r.pod,
            r.labels,
            r.namespace,
            r.service_account,
            service_name=r.service,
            port=r.port,
            proxy="none" if r.role == "workload" else "sidecar",
        )  # fmt: skip
        for r in records
        if r.pod not in known and r.role != "gateway"
    ]
    return topology.with_app_pods([*topology.app_pods, *extra]) if extra else topology


def cmd_describe(args: argparse.Namespace, mesh: MeshDir) -> int:
    from mesh.manager.yaml_files import load_paths
    from mesh.security.describe import describe_pod, render

    topology = _live_topology(mesh)
    pod = find_pod(topology, args.name, args.namespace)
    if pod is None:
        names = ", ".join(p.name for p in topology.pods)
        print(f"meshctl describe: no pod {args.name!r}; the lab has: {names}", file=sys.stderr)
        return NOT_FOUND
    resources = list(load_paths([mesh.config]).resources) if mesh.config.is_dir() else []
    certificate = certificate_info(mesh, pod.name) if pod.proxy != "none" else None
    sys.stdout.write(render(describe_pod(pod, topology, resources), certificate))
    return 0


def _admin_url(mesh: MeshDir, pod: str) -> str | None:
    records, _ = read_registry(mesh.registry)
    for record in records:
        if record.pod == pod and record.admin_port:
            return f"http://{record.admin_address or record.address}:{record.admin_port}"
    return None


def fetch_tap(admin: str, since: int) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{admin}/tap?since={since}", timeout=5) as response:
        data = json.loads(response.read())
    return data if isinstance(data, dict) else {}


def tap_lines(connections: list[dict[str, Any]]) -> list[str]:
    from mesh.security.wire import printable, read_wire

    lines = []
    for item in connections:
        try:
            data = bytes.fromhex(str(item.get("hex") or ""))
        except ValueError:
            data = b""
        view = read_wire(data)
        at = datetime.fromtimestamp(float(item.get("at") or 0), UTC).strftime("%H:%M:%S")
        port = f":{item['port']}" if item.get("port") else ""
        lines.append(f"#{item.get('seq')} {at} from {item.get('peer') or '?'} to{port or ' pod'}")
        lines.append(f"   {view.summary}")
        lines.append(f"   bytes: {data[:16].hex(' ')}{' ...' if len(data) > 16 else ''}")
        lines.append(f"   ascii: {printable(data, 64)}")
    return lines


def cmd_tap(args: argparse.Namespace, mesh: MeshDir) -> int:
    topology = _live_topology(mesh)
    pod = find_pod(topology, args.name, args.namespace)
    name = pod.name if pod is not None else args.name
    if pod is not None and pod.proxy == "none":
        print(
            f"meshctl tap: {name} has no sidecar: nothing records its connections (its app "
            "receives them directly, always plaintext)",
            file=sys.stderr,
        )
        return NOT_FOUND
    admin = _admin_url(mesh, name)
    if admin is None:
        print(f"meshctl tap: {name} is not registered (is the pod up?)", file=sys.stderr)
        return NOT_FOUND
    since = 0
    deadline = time.monotonic() + args.duration if args.follow else 0.0
    while True:
        try:
            data = fetch_tap(admin, since)
        except (OSError, ValueError) as exc:
            print(f"meshctl tap: cannot read {admin}/tap: {exc}", file=sys.stderr)
            return NOT_FOUND
        connections = [c for c in data.get("connections") or [] if isinstance(c, dict)]
        if since == 0:
            print(
                f"{name}: {data.get('recorded', 0)} inbound connection(s) recorded by its sidecar "
                f"(the last {len(connections)} shown, first {data.get('limit_bytes')} bytes each)"
            )
        for line in tap_lines(connections):
            print(line, flush=True)
        since = max([since, *(int(c.get("seq") or 0) for c in connections)])
        if not args.follow or time.monotonic() >= deadline:
            return 0
        time.sleep(0.5)


def cmd_reachability(args: argparse.Namespace, mesh: MeshDir) -> int:
    from mesh.manager.yaml_files import load_paths
    from mesh.security.describe import reachability_matrix

    topology = mesh_topology(mesh)
    resources = list(load_paths([mesh.config]).resources) if mesh.config.is_dir() else []
    cells = reachability_matrix(topology, resources, args.from_app, args.to_app)
    if args.output == "json":
        rows = [
            {
                "from": c.client.name,
                "to": c.server.name,
                "host": c.host,
                "port": c.port,
                "expect": c.code,
                "result": c.outcome.result,
                "reason": c.outcome.reason,
            }  # fmt: skip
            for c in cells
        ]
        print(json.dumps(rows, indent=1))
        return 0
    for c in cells:
        print(f"{c.client.name} to {c.host}: {c.code}  ({c.outcome.reason})")
    return 0


def register(commands: Any, with_mesh: Any) -> None:
    """Add ``describe`` and ``tap`` to meshctl's parser (``with_mesh``: live's resolver)."""
    p = commands.add_parser(
        "describe", help="a pod's identity, mTLS mode, policies and clients (istioctl x describe)"
    )
    p.add_argument("resource", choices=("pod", "po"), help="pod")
    p.add_argument("name", metavar="POD")
    p.add_argument("-n", "--namespace", help="the pod's namespace")
    p.set_defaults(handler=with_mesh(cmd_describe))

    p = commands.add_parser(
        "tap", help="first bytes of a pod's inbound connections: plaintext or TLS, no privileges"
    )
    p.add_argument("name", metavar="POD")
    p.add_argument("-n", "--namespace", help="the pod's namespace")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new connections")
    p.add_argument(
        "--duration", type=float, default=600.0, help="with --follow: stop after this (seconds)"
    )
    p.set_defaults(handler=with_mesh(cmd_tap))

    p = commands.add_parser(
        "reachability",
        help="expected outcome of every client -> server call (istio.io's mTLS matrix)",
    )
    p.add_argument("--from-app", default="sleep", help="clients: pods with this app label")
    p.add_argument("--to-app", default="httpbin", help="servers: pods with this app label")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(handler=with_mesh(cmd_reachability))
