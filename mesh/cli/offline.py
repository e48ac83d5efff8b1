"""meshctl commands that need no running mesh: ``analyze`` and the what-if ``route``.

``route`` runs the very engine the sidecars run (``compile_config`` + ``decide``) on N
simulated requests and tallies where they went, so a trainee can check a canary or a fault
before applying it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.cli.world import WorkloadError, add_workload_options, chosen_topology
from mesh.config import hosts as hostnames
from mesh.config.issues import SKIPPED_KIND
from mesh.config.loader import load_resources
from mesh.config.resource import LoadResult
from mesh.manager.analysis import analyze_all as analyze
from mesh.manager.findings import live_note, print_issues, sort_issues, split_by_file, worst
from mesh.manager.yaml_files import load_paths
from mesh.meshdir import MeshDir
from mesh.routing import Forward, ProxyIdentity, RequestView, compile_config, decide
from mesh.routing.routes import RouteTable
from mesh.routing.table import gateway_port_map
from mesh.snapshot import SNAPSHOT_FILE, Endpoint, Snapshot, SnapshotError
from mesh.topology import Service, Topology

MAX_SIMULATED_REQUESTS = 10_000_000


def register(commands: Any) -> None:
    analyze_cmd = commands.add_parser(
        "analyze", help="validate Istio YAML files or folders, Istio-analyzer style"
    )
    analyze_cmd.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    analyze_cmd.add_argument(
        "--offline",
        action="store_true",
        help="analyze the files alone, not together with the live config of --mesh-dir",
    )
    add_workload_options(analyze_cmd)
    analyze_cmd.set_defaults(handler=run_analyze)

    route = commands.add_parser(
        "route", help="what-if: simulate N requests through the routing engine"
    )
    route.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="config files/folders (default: the live config of --mesh-dir)",
    )
    route.add_argument("--host", required=True, help="Host the client asks for, e.g. reviews")
    route.add_argument("--gateway", help="route as this Gateway's proxy (default: a sidecar)")
    route.add_argument("--port", type=int, help="port the request is addressed on")
    route.add_argument("--path", default="/", help="request path (with ?query)")
    route.add_argument("--method", default="GET")
    route.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'")
    route.add_argument(
        "--source-labels", default="", help="labels of the calling pod: app=x,version=y"
    )
    route.add_argument("--source-namespace", default="default", help="namespace of the calling pod")
    add_workload_options(route)
    route.add_argument("-n", "--requests", type=int, default=100, metavar="N")
    route.add_argument("--seed", type=int, default=1, help="seed for fault and mirror rolls")
    route.add_argument("-o", "--output", choices=["json", "table"], default="table")
    route.set_defaults(handler=run_route)


def registry_topology(args: argparse.Namespace, mesh_dir: str | None) -> Topology:
    """What the analyzer should assume: for a live mesh, its workloads' Services with every
    fresh pod, ready or not (IST0173 asks whether pods exist), or its workloads' pods when
    none is registered; else the workloads chosen (``--profile``, ``--workloads``, course)."""
    from mesh.manager.registry import read_registry, validation_topology

    topology = chosen_topology(args)
    if not mesh_dir:
        return topology
    records, _ = read_registry(Path(mesh_dir, "registry"))
    return validation_topology(topology, records, time.time())


def run_analyze(args: argparse.Namespace) -> int:
    """Findings about the given files, analyzed with the live config of ``--mesh-dir`` (as
    ``istioctl analyze`` does with the cluster) unless ``--offline``. Exit 1 on an Error in
    the files; findings on live resources the files do not touch are summarised in one note."""
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"meshctl analyze: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 1
    given = load_paths(args.paths)
    files = {r.source.file for r in given.resources} | {i.file for i in given.issues if i.file}
    mesh_dir = None if args.offline else args.mesh_dir
    resources = list(given.resources)
    issues = list(given.issues)
    live_config = MeshDir(Path(mesh_dir)).config if mesh_dir else None
    if mesh_dir and live_config is not None:
        if not Path(mesh_dir).is_dir():
            print(f"meshctl analyze: no mesh directory at {mesh_dir}", file=sys.stderr)
            return 2
        live = load_paths([live_config]) if live_config.is_dir() else LoadResult()
        replaced = {(r.kind, r.namespace, r.name) for r in given.resources}
        resources = [r for r in live.resources if r.key not in replaced] + resources
        issues += live.issues
    try:
        topology = registry_topology(args, mesh_dir)
    except WorkloadError as exc:
        print(f"meshctl analyze: {exc}", file=sys.stderr)
        return 1
    issues += analyze(resources, topology)
    mine, elsewhere = split_by_file(issues, files)
    shown = [i for i in sort_issues(mine) if i.code != SKIPPED_KIND]
    print_issues(shown, sys.stdout)
    if worst(shown) in (None, "Info"):
        print("✔ No validation issues found")
    note = live_note(elsewhere, str(live_config)) if live_config is not None else None
    if note:
        print(note)
    return 1 if worst(mine) == "Error" else 0


def _parse_headers(raw_headers: list[str]) -> dict[str, str] | str:
    headers: dict[str, str] = {}
    for raw in raw_headers:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            return f"bad header {raw!r}: write -H 'name: value'"
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _parse_labels(raw: str) -> dict[str, str] | str:
    labels = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            return f"bad label {part!r}: write key=value,key=value"
        labels[key] = value
    return labels


@dataclass(frozen=True)
class SimulatedMesh:
    """What ``route`` simulates against: config, endpoints, and the Services around them."""

    loaded: LoadResult
    endpoints: list[Endpoint]
    topology: Topology
    services: tuple[Service, ...]


def _load_config(args: argparse.Namespace) -> SimulatedMesh | str:
    if args.filename:
        missing = [p for p in args.filename if not Path(p).exists() and p != "-"]
        if missing:
            return f"no such file or folder: {', '.join(missing)}"
        loaded = load_paths(args.filename)
        try:
            topology = chosen_topology(args)
        except WorkloadError as exc:
            return str(exc)
        endpoints = [
            Endpoint(
                p.name,
                p.service,
                "127.0.0.1",
                p.port,
                p.labels,
                namespace=p.namespace,
                service_account=p.service_account,
                proxy=p.proxy,
            )  # fmt: skip
            for p in topology.app_pods
        ]
        return SimulatedMesh(loaded, endpoints, topology, topology.services)
    if not args.mesh_dir:
        return "give config with -f PATH, or a live mesh with --mesh-dir (env MESH_DIR)"
    path = Path(args.mesh_dir, "snapshot", SNAPSHOT_FILE)
    try:
        snapshot = Snapshot.from_json(path.read_bytes())
    except OSError:
        return f"no published config at {path}: is the mesh manager running?"
    except SnapshotError as exc:
        return f"cannot read {path}: {exc}"
    topology = chosen_topology(args).with_app_pods(e.as_pod() for e in snapshot.endpoints)
    return SimulatedMesh(
        load_resources(snapshot.resources, str(path)),
        list(snapshot.endpoints),
        topology,
        snapshot.services,
    )


def run_route(args: argparse.Namespace) -> int:
    if not 1 <= args.requests <= MAX_SIMULATED_REQUESTS:
        print(f"meshctl route: -n must be between 1 and {MAX_SIMULATED_REQUESTS}", file=sys.stderr)
        return 2
    headers = _parse_headers(args.header)
    labels = _parse_labels(args.source_labels)
    for problem in (headers, labels):
        if isinstance(problem, str):
            print(f"meshctl route: {problem}", file=sys.stderr)
            return 2
    assert isinstance(headers, dict) and isinstance(labels, dict)
    simulated = _load_config(args)
    if isinstance(simulated, str):
        print(f"meshctl route: {simulated}", file=sys.stderr)
        return 2
    loaded = simulated.loaded
    findings = loaded.issues + analyze(loaded.resources, simulated.topology)
    blocking = [i for i in findings if i.is_error]
    if blocking:
        print("meshctl route: the config has errors; fix them first:", file=sys.stderr)
        for issue in blocking:
            print(f"  {issue}", file=sys.stderr)
        return 1
    port = args.port
    if args.gateway:
        # NAME (any namespace, if only one has it) or NAMESPACE/NAME.
        wanted_ns, _, wanted = args.gateway.rpartition("/")
        candidates = [
            r
            for r in loaded.resources
            if r.kind == "Gateway" and r.name == wanted and wanted_ns in ("", r.namespace)
        ]
        if len(candidates) != 1:
            why = "is not defined" if not candidates else "is ambiguous: write NAMESPACE/NAME"
            print(f"meshctl route: gateway {args.gateway!r} {why}", file=sys.stderr)
            return 2
        gateway = candidates[0]
        pod = next(
            (
                p
                for p in simulated.topology.gateway_pods
                if all(p.labels.get(k) == v for k, v in gateway.spec.selector.items())
            ),
            None,
        )
        proxy = ProxyIdentity(
            "simulated-gateway",
            dict(pod.labels if pod else gateway.spec.selector),
            True,
            pod.namespace if pod else gateway.namespace,
        )
        if port is None:
            port = next(
                (s.port.number for s in gateway.spec.servers if s.port and s.port.number), 80
            )
        # A Gateway's server port (80) listens on its Service's target port (8080).
        port = gateway_port_map(proxy, simulated.services).get(port, port)
    else:
        proxy = ProxyIdentity("simulated-sidecar", labels, namespace=args.source_namespace)
        if port is None:
            port = hostnames.split_host_port(args.host)[1] or 9080
    table = compile_config(
        loaded.resources, simulated.endpoints, proxy, services=simulated.services
    )
    request = RequestView(
        host=args.host,
        path=args.path if args.path.startswith("/") else "/" + args.path,
        method=args.method.upper(),
        headers=headers,
        port=port,
    )
    rng = random.Random(args.seed)
    destinations: Counter[str] = Counter()
    # Every abort status the host's routes can inject is listed, 0 when it never fired, and
    # 503 always (DESIGN's contract shows it for a route with no fault at all).
    aborted: Counter[str] = Counter({status: 0 for status in _abort_statuses(table, request)})
    local: Counter[str] = Counter()
    delayed = 0
    no_route = 0
    for _ in range(args.requests):
        decision = decide(table, request, rng)
        if isinstance(decision, Forward):
            if decision.fault_delay is not None:
                delayed += 1
            if decision.fault_abort is not None:
                aborted[str(decision.fault_abort)] += 1
            else:
                destinations[decision.cluster.label] += 1
        elif decision.flag == "NR":
            no_route += 1
        else:
            local[str(decision.status)] += 1
    result: dict[str, Any] = {
        "host": args.host,
        "requests": args.requests,
        "destinations": dict(sorted(destinations.items())),
        "aborted": dict(sorted(aborted.items())),
        "delayed": delayed,
        "no_route": no_route,
    }
    if local:
        result["local_replies"] = dict(sorted(local.items()))
    if args.output == "json":
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


def _abort_statuses(table: RouteTable, request: RequestView) -> set[str]:
    """503, plus the abort statuses configured on the rules of the vhost ``request`` reaches."""
    statuses = {"503"}
    vhost = table.vhost_for(request.host, request.port)
    for rule in vhost.rules if vhost is not None else ():
        fault = rule.route.fault
        if fault is not None and fault.abort is not None and fault.abort.http_status:
            statuses.add(str(fault.abort.http_status))
    return statuses


def _print_table(result: dict[str, Any]) -> None:
    total = result["requests"]
    rows = [(f"→ {k}", v) for k, v in result["destinations"].items()]
    rows += [(f"aborted {k}", v) for k, v in result["aborted"].items() if v]
    rows += [(f"local reply {k}", v) for k, v in result.get("local_replies", {}).items()]
    if result["no_route"]:
        rows.append(("404 no route (NR)", result["no_route"]))
    print(f"{total} requests for host {result['host']}")
    width = max([len(r[0]) for r in rows] + [12])
    print(f"{'OUTCOME':<{width}}  {'COUNT':>8}  {'SHARE':>7}")
    for label, count in rows:
        print(f"{label:<{width}}  {count:>8}  {100 * count / total:>6.1f}%")
    if result["delayed"]:
        print(f"{result['delayed']} of them delayed by fault injection")
