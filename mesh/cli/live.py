"""meshctl commands against a live mesh directory: apply, delete, get, status, proxy-status,
endpoints.

Primitives: ``resolve_mesh(args)`` (``--mesh-dir``, ``$MESH_DIR``, or ``./.mesh`` when
``meshlab up --local`` made one) and one handler per command. The handlers parse arguments,
read the input files, and print; the apply transaction itself (lock, plan, validate, commit,
wait for sync) is the control plane's: ``mesh.manager.apply``.

Exit codes: 0 ok; 1 refused or not found (nothing written); 2 no mesh, or ``--wait`` timed out.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from mesh.cli.world import mesh_topology
from mesh.config.issues import Issue
from mesh.config.validate.analyzer import ALLOW_DANGLING
from mesh.manager.apply import (
    NO_MESH,
    OK,
    REFUSED,
    Outcome,
    apply_resources,
    delete_keys,
    plural_ref,
    wait_synced,
)
from mesh.manager.configdir import (
    KINDS,
    ConfigFile,
    Key,
    normalize_kind,
    parse_file,
    read_files,
)
from mesh.manager.findings import count_text, print_issues
from mesh.manager.observe import ManagerView, MeshState, age, table
from mesh.manager.registry import is_fresh
from mesh.meshdir import MeshDir, MeshDirError, ProxyStatus

DEFAULT_LOCAL_MESH = Path(".mesh")


# -- plumbing ---------------------------------------------------------------------------------


def resolve_mesh(mesh_dir: str | None) -> MeshDir:
    """The live mesh: ``--mesh-dir``/``$MESH_DIR``, else ``./.mesh`` if ``meshlab`` made one."""
    if mesh_dir:
        return MeshDir(Path(mesh_dir)).require()
    if (DEFAULT_LOCAL_MESH / "config").is_dir():
        return MeshDir(DEFAULT_LOCAL_MESH)
    raise MeshDirError(
        "no live mesh: pass --mesh-dir DIR or set MESH_DIR (meshlab up --local uses ./.mesh)"
    )


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _load_input(sources: Sequence[str], stdin: TextIO) -> tuple[list[Any], list[Issue], str]:
    from mesh.config.loader import latest_definitions, load_text
    from mesh.manager.yaml_files import load_paths

    resources: list[Any] = []
    issues: list[Issue] = []
    stdin_used = False
    for source in sources:
        if source == "-":
            if stdin_used:
                return [], [], "error: '-' (stdin) given more than once"
            stdin_used = True
            result = load_text(stdin.read(), "<stdin>")
        else:
            path = Path(source)
            if not path.exists():
                return [], [], f'error: the path "{source}" does not exist'
            result = load_paths([path])
        resources.extend(result.resources)
        issues.extend(result.issues)
    return latest_definitions(resources), issues, ""


def _show(outcome: Outcome, out: TextIO) -> int:
    """Print what a transaction reports (findings and refusals on stderr) and its exit code."""
    for line in outcome.lines:
        print(line.text, file=sys.stderr if line.err else out)
    return outcome.code


# -- command handlers -------------------------------------------------------------------------


def with_mesh(
    handler: Callable[[argparse.Namespace, MeshDir], int],
) -> Callable[[argparse.Namespace], int]:
    """A handler that needs the live mesh directory: resolved once here, or exit 2 saying why."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            mesh = resolve_mesh(args.mesh_dir)
        except MeshDirError as exc:
            _err(f"error: {exc}")
            return NO_MESH
        return handler(args, mesh)

    return run


@with_mesh
def cmd_apply(args: argparse.Namespace, mesh: MeshDir) -> int:
    resources, issues, problem = _load_input(args.filename, sys.stdin)
    if problem:
        _err(problem)
        return REFUSED
    try:
        outcome = apply_resources(
            mesh,
            resources,
            issues,
            mesh_topology(mesh),
            prune=args.prune,
            allow_dangling=args.allow_dangling,
        )
    except MeshDirError as exc:
        _err(f"error: {exc}")
        return NO_MESH
    if _show(outcome, sys.stdout) != OK or not args.wait:
        return outcome.code
    synced = wait_synced(mesh, outcome.expected, outcome.written_at, args.timeout)
    return _show(synced, sys.stdout)


def _keys_from_files(sources: Sequence[str]) -> tuple[list[Key], str]:
    keys: list[Key] = []
    for source in sources:
        if source == "-":
            files = [parse_file("<stdin>", sys.stdin.read())]
        else:
            path = Path(source)
            if not path.exists():
                return [], f'error: the path "{source}" does not exist'
            paths = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
            files = []
            for p in paths:
                try:
                    files.append(parse_file(str(p), p.read_text(encoding="utf-8")))
                except (OSError, UnicodeDecodeError) as exc:
                    return [], f"error: cannot read {p}: {exc}"
        keys.extend(doc.key for f in files for doc in f.docs if doc.key is not None)
    if not keys:
        return (
            [],
            "error: no Istio resources (VirtualService, DestinationRule, Gateway, ServiceEntry) found",
        )
    return keys, ""


@with_mesh
def cmd_delete(args: argparse.Namespace, mesh: MeshDir) -> int:
    if args.filename:
        if args.kind:
            _err("error: give either -f PATH or KIND NAME..., not both")
            return REFUSED
        keys, problem = _keys_from_files(args.filename)
    else:
        if not args.kind or not args.names:
            _err("error: give -f PATH or KIND NAME... (e.g. meshctl delete vs reviews)")
            return REFUSED
        kind = normalize_kind(args.kind)
        if kind is None:
            _err(
                f"error: unknown kind {args.kind!r}; use one of {', '.join(KINDS)} (vs, dr, gw, se, pa, ap)"
            )
            return REFUSED
        keys, problem = [(kind, args.namespace or "default", name) for name in args.names], ""
    if problem:
        _err(problem)
        return REFUSED
    try:
        outcome = delete_keys(mesh, keys, mesh_topology(mesh))
    except MeshDirError as exc:
        _err(f"error: {exc}")
        return NO_MESH
    if _show(outcome, sys.stdout) != OK or not args.wait or not outcome.expected:
        return outcome.code
    synced = wait_synced(mesh, outcome.expected, outcome.written_at, args.timeout)
    return _show(synced, sys.stdout)


def _spec(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = raw.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _hosts(raw: Mapping[str, Any]) -> str:
    spec = _spec(raw)
    kind = raw.get("kind")
    if kind in ("VirtualService", "ServiceEntry"):
        hosts = spec.get("hosts") or []
    elif kind == "DestinationRule":
        hosts = [spec.get("host", "")]
    else:
        hosts = [
            h
            for server in spec.get("servers") or []
            if isinstance(server, Mapping)
            for h in server.get("hosts") or []
        ]
    return ",".join(map(str, hosts)) if isinstance(hosts, list) else str(hosts)


def _gateways(raw: Mapping[str, Any]) -> str:
    spec = _spec(raw)
    if raw.get("kind") != "VirtualService":
        return ""
    gateways = spec.get("gateways")
    return ",".join(map(str, gateways)) if isinstance(gateways, list) and gateways else ""


@with_mesh
def cmd_get(args: argparse.Namespace, mesh: MeshDir) -> int:
    kind = None
    if args.kind and args.kind.lower() != "all":
        kind = normalize_kind(args.kind)
        if kind is None:
            _err(
                f"error: unknown kind {args.kind!r}; use one of {', '.join(KINDS)} (vs, dr, gw, se, pa, ap)"
            )
            return REFUSED
    files: list[ConfigFile] = read_files(mesh.config)
    now = time.time()
    found: list[tuple[Key, dict[str, Any], float | None]] = []
    for cfg in files:
        try:
            mtime: float | None = (mesh.config / cfg.name).stat().st_mtime
        except OSError:
            mtime = None
        for doc in cfg.docs:
            if doc.key is None or doc.raw is None or (kind and doc.key[0] != kind):
                continue
            if args.name and doc.key[2] != args.name:
                continue
            if args.namespace and doc.key[1] != args.namespace:
                continue
            found.append((doc.key, dict(doc.raw), mtime))
    found.sort(key=lambda item: item[0])
    if args.name and not found:
        _err(
            f'Error from server (NotFound): {plural_ref(kind or "VirtualService")} "{args.name}" not found'
        )
        return REFUSED
    raws = [raw for _key, raw, _m in found]
    if args.output == "json":
        body: Any = raws[0] if args.name else {"apiVersion": "v1", "kind": "List", "items": raws}
        print(json.dumps(body, indent=2))
        return OK
    if args.output == "yaml":
        print("---\n".join(yaml.safe_dump(r, sort_keys=False) for r in raws), end="")
        return OK
    if not found:
        print("No resources found.", file=sys.stderr)
        return OK
    header = ["NAMESPACE", "NAME", "GATEWAYS", "HOSTS", "AGE"]
    rows = [
        [key[1], key[2], _gateways(raw), _hosts(raw), age(now - m if m else None)]
        for key, raw, m in found
    ]
    if kind is None:
        header = ["KIND", *header]
        rows = [[key[0], *row] for (key, _r, _m), row in zip(found, rows, strict=True)]
    print(table(header, rows))
    return OK


def _fmt_version(version: int | None) -> str:
    return "-" if version is None else str(version)


@with_mesh
def cmd_status(args: argparse.Namespace, mesh: MeshDir) -> int:
    now = time.time()
    state = MeshState.read(mesh)
    manager = ManagerView.from_status(state.manager, now)
    if state.manager is None:
        print("manager: never ran on this mesh directory")
    elif manager.alive:
        print(f"manager: running (pid {manager.pid}, heartbeat {age(manager.heartbeat_age)} ago)")
    else:
        print(f"manager: NOT RUNNING (last heartbeat {age(manager.heartbeat_age)} ago)")
    snap = state.snapshot
    if snap is not None:
        print(
            f"published: version {snap.version} ({snap.hash[:19]}), "
            f"{age(now - snap.generated_at)} ago, {len(snap.resources)} resources, "
            f"{len(snap.endpoints)} ready endpoints"
        )
    elif state.snapshot_error:
        print(f"published: unreadable snapshot: {state.snapshot_error}")
    else:
        print("published: nothing yet")
    warnings = [Issue.from_json(w) for w in manager.warnings]
    if manager.rejected:
        refused = [Issue.from_json(i) for i in manager.rejected]
        when = age(now - manager.rejected_at) if manager.rejected_at else "?"
        keep = f"version {snap.version}" if snap else "nothing"
        print(
            f"config: REJECTED ({when} ago), {count_text(refused)}; the mesh keeps serving "
            f"{keep}. Why:"
        )
        print_issues(refused, sys.stdout, indent="  ")
    elif state.manager is not None:
        print(f"config: accepted, {count_text(warnings)}")
        print_issues([w for w in warnings if w.severity != "Info"], sys.stdout, indent="  ")
        if any(w.severity == "Info" for w in warnings):
            print(f"  (notes: meshctl analyze {mesh.config} shows them with their files)")
    rows = state.rows(now)
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("SYNCED", "STALE", "ERROR")}
    ready = sum(1 for r in rows if r.ready)
    print(
        f"proxies: {len(rows)} — {counts['SYNCED']} SYNCED, {counts['STALE']} STALE, "
        f"{counts['ERROR']} ERROR; {ready} ready"
    )
    for row in rows:
        if not row.ok:
            print(
                f"  {row.pod}: {row.status}{', not ready' if not row.ready else ''}"
                f"{f' ({row.detail})' if row.detail else ''}"
            )
    for problem in state.registry_problems:
        print(f"  registry: {problem}")
    if state.manager is not None and state.manager.ca is not None:
        from mesh.manager.ca import ca_status_lines

        for line in ca_status_lines(state.manager.ca):
            print(line)
    return OK if manager.alive else REFUSED


def proxy_status_table(state: MeshState, now: float) -> str:
    rows = state.rows(now)
    return table(
        ["POD", "ROLE", "VERSION", "STATUS", "READY", "NOTE"],
        [
            [r.pod, r.role, _fmt_version(r.version), r.status, str(r.ready).lower(), r.detail]
            for r in rows
        ],
    )


@with_mesh
def cmd_proxy_status(args: argparse.Namespace, mesh: MeshDir) -> int:
    state = MeshState.read(mesh)
    published = state.published()
    print(f"published version: {_fmt_version(published[0] if published else None)}")
    if not state.records and not state.statuses:
        print("No proxies registered.")
        return OK
    print(proxy_status_table(state, time.time()))
    return OK


@with_mesh
def cmd_endpoints(args: argparse.Namespace, mesh: MeshDir) -> int:
    now = time.time()
    state = MeshState.read(mesh, with_snapshot=False)
    records = [r for r in state.records if r.role == "sidecar"]
    if args.service:
        records = [r for r in records if r.service == args.service]
        if not records:
            _err(f'No endpoints found for service "{args.service}".')
            return REFUSED
    ejected = ejections_by_pod(state.statuses.values(), now)
    rows = []
    for r in records:
        ready = str(r.ready).lower()
        if not is_fresh(r, now):
            ready = f"false (stale: heartbeat {age(now - r.heartbeat)} ago)"
        labels = ",".join(f"{k}={v}" for k, v in sorted(r.labels.items()))
        outlier = "; ".join(
            f"EJECTED {left:.1f}s left (by {by})" for by, left in ejected.get(r.pod, [])
        )
        rows.append([r.pod, r.service, f"{r.address}:{r.port}", labels, ready, outlier or "-"])
    rows.sort(key=lambda row: (row[1], row[0]))
    if not rows:
        print("No endpoints registered.")
        return OK
    print(table(["POD", "SERVICE", "ADDRESS", "LABELS", "READY", "OUTLIER"], rows))
    return OK


def ejections_by_pod(
    statuses: Iterable[ProxyStatus], now: float
) -> dict[str, list[tuple[str, float]]]:
    """Ejected pod -> ``[(the client proxy that ejected it, seconds left)]``, from the
    proxies' status records (outlier detection is per client proxy, as in Envoy)."""
    found: dict[str, list[tuple[str, float]]] = {}
    for status in sorted(statuses, key=lambda s: s.pod):
        for pod, left in status.ejections(now):
            found.setdefault(pod, []).append((status.pod, left))
    return found


# -- registration -----------------------------------------------------------------------------


def register(commands: Any) -> None:
    """Add the live subcommands to meshctl's parser (``commands``: argparse subparsers)."""
    p = commands.add_parser(
        "apply",
        help="validate and apply Istio YAML to the live mesh",
        description="Validate the whole resulting config; on any error write nothing (exit 1).",
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="file, folder or - (stdin); repeatable",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="return when every sidecar and gateway applied the new version",
    )
    p.add_argument("--timeout", type=_positive, default=30.0, help="seconds (with --wait)")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete every applied resource that is not in the input",
    )
    p.add_argument(
        "--allow-dangling",
        action="store_true",
        help=(
            "apply references to subsets, hosts or gateways that are not defined (as Istio "
            f"does: requests get 503 NC or 404 NR); marks the resources {ALLOW_DANGLING}"
        ),
    )
    p.set_defaults(handler=cmd_apply)

    p = commands.add_parser("delete", help="delete resources from the live mesh")
    p.add_argument(
        "kind",
        nargs="?",
        help="virtualservice|vs, destinationrule|dr, gateway|gw, serviceentry|se, "
        "peerauthentication|pa, authorizationpolicy|ap",
    )
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("-f", "--filename", action="append", metavar="PATH")
    p.add_argument("-n", "--namespace", help="namespace of KIND NAME (default: default)")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout", type=_positive, default=30.0)
    p.set_defaults(handler=cmd_delete)

    p = commands.add_parser("get", help="list applied resources")
    p.add_argument(
        "kind",
        nargs="?",
        help="virtualservice|vs, destinationrule|dr, gateway|gw, serviceentry|se, "
        "peerauthentication|pa, authorizationpolicy|ap",
    )
    p.add_argument("name", nargs="?")
    p.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")
    p.add_argument("-n", "--namespace", help="only this namespace (default: every namespace)")
    p.set_defaults(handler=cmd_get)

    p = commands.add_parser("status", help="manager version, last refused config, proxies")
    p.set_defaults(handler=cmd_status)

    p = commands.add_parser("proxy-status", help="per proxy: applied version, SYNCED/STALE/ERROR")
    p.set_defaults(handler=cmd_proxy_status)

    p = commands.add_parser("endpoints", help="registered pods, labels and readiness")
    p.add_argument("service", nargs="?")
    p.set_defaults(handler=cmd_endpoints)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be within (0, 3600] seconds")
    return value
