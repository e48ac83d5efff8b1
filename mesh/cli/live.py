"""meshctl commands against a live mesh directory: apply, delete, get, status, proxy-status,
endpoints.

Primitives: ``resolve_mesh(args)`` (``--mesh-dir``, ``$MESH_DIR``, or ``./.mesh`` when
``meshlab up --local`` made one), ``apply_resources`` / ``delete_keys`` (read, plan, validate
the *whole* resulting config, write — all under the exclusive config lock), and
``wait_synced`` (poll the snapshot and every proxy's status until the change is everywhere).

Exit codes: 0 ok; 1 refused or not found (nothing written); 2 no mesh, or ``--wait`` timed out.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from mesh.config.issues import Issue
from mesh.lab.topology import COURSE
from mesh.manager.compile import blocking, resource_key, sort_resources
from mesh.manager.configdir import (
    KINDS,
    ConfigFile,
    Key,
    Plan,
    ResourceNameError,
    commit,
    kind_ref,
    normalize_kind,
    parse_file,
    plan_apply,
    plan_delete,
    read_files,
)
from mesh.manager.meshdir import MeshDir, MeshDirError, config_lock, mark_applied
from mesh.manager.observe import ManagerView, MeshState, age, table
from mesh.manager.registry import is_fresh, validation_topology
from mesh.snapshot import Snapshot

OK, REFUSED, NO_MESH = 0, 1, 2
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


def _plural_ref(kind: str) -> str:
    return f"{KINDS[kind]}.networking.istio.io"


def _key_text(key: Key) -> str:
    kind, namespace, name = key
    return f"{kind_ref(kind)}/{name}" + (f" -n {namespace}" if namespace != "default" else "")


@dataclass
class Outcome:
    """What an apply or delete did (or would have done), for printing and for ``--wait``."""

    code: int
    issues: list[Issue] = field(default_factory=list)
    plan: Plan | None = None
    expected: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    written_at: float = 0.0
    message: str = ""


def _load_input(sources: Sequence[str], stdin: TextIO) -> tuple[list[Any], list[Issue], str]:
    from mesh.config.loader import load_text
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
    return later_files_win(resources), issues, ""


def later_files_win(resources: Sequence[Any]) -> list[Any]:
    """The loader's rule for several files: a resource defined again in a later file replaces
    the earlier one (``-f reset.yaml -f dark-launch.yaml``: baseline, then dark launch); twice
    in one file stays for ``analyze`` to report."""
    latest: dict[tuple[str, str], Any] = {}
    for res in resources:
        earlier = latest.get((res.kind, res.name))
        if earlier is None or earlier.source.file != res.source.file:
            latest[(res.kind, res.name)] = res
    return [
        r
        for r in resources
        if latest[(r.kind, r.name)] is r or latest[(r.kind, r.name)].source.file == r.source.file
    ]


def _validate(mesh: MeshDir, plan: Plan, incoming: Sequence[Any], now: float) -> list[Issue]:
    """Findings on the whole config as it would be: kept documents plus the incoming ones."""
    from mesh.config.loader import load_text
    from mesh.config.validate import analyze

    resources: list[Any] = []
    issues: list[Issue] = []
    for name, text in sorted(plan.kept.items()):
        if not text.strip():
            continue
        result = load_text(text, str(mesh.config / name))
        resources.extend(result.resources)
        issues.extend(result.issues)
    # The manager loads config/ with load_paths, in file-name order: same rule here.
    resources = later_files_win(resources)
    resources.extend(incoming)
    state = MeshState.read(mesh, with_snapshot=False)
    if resources:
        issues.extend(analyze(resources, validation_topology(COURSE, state.records, now)))
    return issues


def _print_issues(issues: Sequence[Issue], out: TextIO) -> None:
    for issue in issues:
        print(str(issue), file=out)


# -- apply / delete ---------------------------------------------------------------------------


def apply_resources(
    mesh: MeshDir,
    resources: Sequence[Any],
    input_issues: Sequence[Issue],
    out: TextIO,
    *,
    prune: bool = False,
) -> Outcome:
    """Validate the resulting config and write it, or write nothing. Prints kubectl lines."""
    if not resources and not any(i.is_error for i in input_issues):
        _print_issues(input_issues, sys.stderr)
        _err("error: no objects passed to apply")
        return Outcome(REFUSED, list(input_issues))
    with config_lock(mesh):
        files = read_files(mesh.config)
        try:
            plan = plan_apply(files, [r.raw for r in resources], prune=prune)
        except ResourceNameError as exc:
            _err(f"error: {exc}; nothing applied")
            return Outcome(REFUSED)
        now = time.time()
        issues = [*input_issues, *_validate(mesh, plan, resources, now)]
        refused = blocking(issues)
        if refused:
            _print_issues(issues, sys.stderr)
            _err(
                f"error: {len(refused)} error(s) in the resulting config; nothing applied "
                "(the mesh keeps its current config)"
            )
            return Outcome(REFUSED, issues, plan)
        _print_issues(issues, sys.stderr)  # warnings (IST0173 ...) do not stop an apply
        commit(mesh.config, plan)
        if plan.changes:
            mark_applied(mesh)
        written_at = time.time()
    expected: dict[Key, dict[str, Any] | None] = {
        resource_key(r.raw): sort_resources([r.raw])[0] for r in resources
    }
    expected.update({key: None for key, action in plan.outcomes if action == "pruned"})
    for key, action in plan.outcomes:
        print(f"{_key_text(key)} {action}", file=out)
    return Outcome(OK, issues, plan, expected, written_at)


def delete_keys(mesh: MeshDir, keys: Sequence[Key], out: TextIO) -> Outcome:
    with config_lock(mesh):
        files = read_files(mesh.config)
        plan = plan_delete(files, keys)
        missing = [key for key, action in plan.outcomes if action == "not found"]
        found = [key for key, action in plan.outcomes if action == "deleted"]
        issues: list[Issue] = []
        if found:
            issues = _validate(mesh, plan, [], time.time())
            refused = blocking(issues)
            if refused:
                _print_issues(refused, sys.stderr)
                names = ", ".join(_key_text(k) for k in found)
                _err(f"error: deleting {names} would leave the config broken; nothing deleted")
                return Outcome(REFUSED, issues, plan)
            commit(mesh.config, plan)
            mark_applied(mesh)
        written_at = time.time()
    for key in found:
        print(f'{kind_ref(key[0])} "{key[2]}" deleted', file=out)
    for key in missing:
        _err(f'Error from server (NotFound): {_plural_ref(key[0])} "{key[2]}" not found')
    expected: dict[Key, dict[str, Any] | None] = {key: None for key in found}
    return Outcome(REFUSED if missing else OK, issues, plan, expected, written_at)


# -- waiting for propagation ------------------------------------------------------------------


def snapshot_has(snapshot: Snapshot, expected: Mapping[Key, Mapping[str, Any] | None]) -> bool:
    """Does ``snapshot`` hold every expected resource (None: the resource is gone)?"""
    present = {resource_key(r): r for r in snapshot.resources}
    for key, raw in expected.items():
        if raw is None:
            if key in present:
                return False
        elif present.get(key) != raw:
            return False
    return True


def wait_synced(
    mesh: MeshDir,
    expected: Mapping[Key, Mapping[str, Any] | None],
    since: float,
    timeout: float,
    out: TextIO,
    *,
    clock: Callable[[], float] = time.time,
    interval: float = 0.02,
) -> int:
    """Until the manager published ``expected`` and every live proxy applied that version."""
    deadline = time.monotonic() + timeout
    version: int | None = None
    lagging: list[str] = []
    manager = ManagerView.from_status(None, clock())
    while True:
        now = clock()
        state = MeshState.read(mesh)
        manager = ManagerView.from_status(state.manager, now)
        snap = state.snapshot
        if version is None and snap is not None:
            # Either the snapshot visibly holds the change, or the manager read config/ after
            # the write, accepted it and this is what it published (content compared by the
            # manager's loader may differ in form from ours, e.g. YAML timestamps).
            read_after = manager.config_read_at is not None and manager.config_read_at >= since
            if snapshot_has(snap, expected) or (
                read_after and not manager.rejected and manager.version == snap.version
            ):
                version = snap.version
        if version is None and manager.rejected_at is not None and manager.rejected_at >= since:
            _err("error: the manager refused the config; the mesh keeps its previous version:")
            for issue in manager.rejected:
                _err("  " + str(Issue.from_json(issue)))
            return NO_MESH
        if version is not None:
            lagging = []
            for record in state.records:
                if not is_fresh(record, now):
                    continue  # a dead pod is out of the mesh, not a laggard
                status = state.statuses.get(record.pod) or {}
                try:
                    applied = int(status.get("version"))  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    applied = None
                if applied is None or applied < version:
                    error = status.get("error")
                    at = "no status" if applied is None else f"at version {applied}"
                    lagging.append(f"{record.pod} ({at}{f', error: {error}' if error else ''})")
            if not lagging:
                count = sum(1 for r in state.records if is_fresh(r, now))
                print(f"synced: version {version} applied by {count} proxies", file=out)
                return OK
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if version is None:
        why = (
            "the manager is not running"
            if not manager.alive
            else "the manager has not published it yet"
        )
        _err(f"error: timed out after {timeout:g}s: {why}")
    else:
        _err(
            f"error: timed out after {timeout:g}s waiting for version {version}; "
            f"not synced: {', '.join(lagging)}"
        )
    return NO_MESH


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
        outcome = apply_resources(mesh, resources, issues, sys.stdout, prune=args.prune)
    except MeshDirError as exc:
        _err(f"error: {exc}")
        return NO_MESH
    if outcome.code != OK or not args.wait:
        return outcome.code
    return wait_synced(mesh, outcome.expected, outcome.written_at, args.timeout, sys.stdout)


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
        return [], "error: no Istio resources (VirtualService, DestinationRule, Gateway) found"
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
            _err(f"error: unknown kind {args.kind!r}; use one of {', '.join(KINDS)} (vs, dr, gw)")
            return REFUSED
        keys, problem = [(kind, "default", name) for name in args.names], ""
    if problem:
        _err(problem)
        return REFUSED
    try:
        outcome = delete_keys(mesh, keys, sys.stdout)
    except MeshDirError as exc:
        _err(f"error: {exc}")
        return NO_MESH
    if outcome.code != OK or not args.wait or not outcome.expected:
        return outcome.code
    return wait_synced(mesh, outcome.expected, outcome.written_at, args.timeout, sys.stdout)


def _hosts(raw: Mapping[str, Any]) -> str:
    spec = raw.get("spec") if isinstance(raw.get("spec"), Mapping) else {}
    kind = raw.get("kind")
    if kind == "VirtualService":
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
    spec = raw.get("spec") if isinstance(raw.get("spec"), Mapping) else {}
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
            _err(f"error: unknown kind {args.kind!r}; use one of {', '.join(KINDS)} (vs, dr, gw)")
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
            found.append((doc.key, dict(doc.raw), mtime))
    found.sort(key=lambda item: item[0])
    if args.name and not found:
        _err(
            f'Error from server (NotFound): {_plural_ref(kind or "VirtualService")} "{args.name}" not found'
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
    header = ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    rows = [
        [key[2], _gateways(raw), _hosts(raw), age(now - m if m else None)] for key, raw, m in found
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
    if manager.rejected:
        when = age(now - manager.rejected_at) if manager.rejected_at else "?"
        keep = f"version {snap.version}" if snap else "nothing"
        print(f"REJECTED config ({when} ago); the mesh keeps serving {keep}. Why:")
        for issue in manager.rejected:
            print("  " + str(Issue.from_json(issue)))
    else:
        print("config: accepted (no errors)")
    for warning in manager.warnings:
        print("  " + str(Issue.from_json(warning)))
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
    rows = []
    for r in records:
        ready = str(r.ready).lower()
        if not is_fresh(r, now):
            ready = f"false (stale: heartbeat {age(now - r.heartbeat)} ago)"
        labels = ",".join(f"{k}={v}" for k, v in sorted(r.labels.items()))
        rows.append([r.pod, r.service, f"{r.address}:{r.port}", labels, ready])
    rows.sort(key=lambda row: (row[1], row[0]))
    if not rows:
        print("No endpoints registered.")
        return OK
    print(table(["POD", "SERVICE", "ADDRESS", "LABELS", "READY"], rows))
    return OK


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
    p.set_defaults(handler=cmd_apply)

    p = commands.add_parser("delete", help="delete resources from the live mesh")
    p.add_argument("kind", nargs="?", help="virtualservice|vs, destinationrule|dr, gateway|gw")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("-f", "--filename", action="append", metavar="PATH")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout", type=_positive, default=30.0)
    p.set_defaults(handler=cmd_delete)

    p = commands.add_parser("get", help="list applied resources")
    p.add_argument("kind", nargs="?", help="virtualservice|vs, destinationrule|dr, gateway|gw")
    p.add_argument("name", nargs="?")
    p.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")
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
