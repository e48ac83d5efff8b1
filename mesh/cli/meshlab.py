"""meshlab: runs the lab (kind's role). ``meshlab up --local``, ``meshlab status``, ``meshlab console``.

``up --local`` starts the whole lab as local processes (``mesh.lab.local.LocalLab``) in the
foreground and stops every child on Ctrl-C or SIGTERM. ``status`` prints the proxy-status table
and exits 0 only when every pod (and the gateway) is ready and synced. ``ready POD true|false``
flips a pod's readiness probe (the readiness scenario). ``down`` stops a lab started in another
terminal on the same mesh directory. ``console`` runs the console (Kiali's role) on a mesh
directory in the foreground; ``up --local`` already starts one, with Prometheus when a
``prometheus`` binary is on PATH.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mesh.lab.local import BASELINE
from mesh.lab.topology import BOOKINFO_PODS, GATEWAY_POD, GATEWAY_PORT
from mesh.meshdir import MeshDir

DEFAULT_MESH_DIR = ".mesh"
LAB_PID = "lab.pid"


def _mesh_dir(args: argparse.Namespace) -> Path:
    return Path(args.mesh_dir or os.environ.get("MESH_DIR") or DEFAULT_MESH_DIR)


def cmd_up(args: argparse.Namespace) -> int:
    if not args.local:
        print(
            "meshlab up: only --local is built in; for the Docker Compose lab run `make up`",
            file=sys.stderr,
        )
        return 2
    from mesh.lab.local import HOSTS, LabError, LocalLab

    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum
        raise KeyboardInterrupt

    # Both explicitly: a shell starting meshlab in the background without job control
    # leaves SIGINT ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    mesh_dir = _mesh_dir(args)
    baseline = None if args.no_baseline else Path(args.baseline)
    if baseline is not None and not baseline.is_file():
        print(f"meshlab: baseline {baseline} not found (--baseline PATH)", file=sys.stderr)
        return 2
    lab = LocalLab(
        mesh_dir,
        gateway_port=args.gateway_port,
        out=sys.stdout,
        baseline=baseline,
        console_port=args.console_port,
        prometheus_port=args.prometheus_port,
    )
    pid_file = lab.mesh.root / LAB_PID
    wrote_pid = False
    try:
        try:
            lab.start(timeout=args.timeout)
        except (LabError, OSError) as exc:
            print(f"meshlab: {exc}", file=sys.stderr)
            return 1
        pid_file.write_text(f"{os.getpid()}\n")
        wrote_pid = True
        url = lab.gateway_url
        observe = lab.observability
        seen = ""
        if observe is not None:
            seen = f"  console: {observe.console_url}/  (graph, timeline, traces; Zipkin API /api/v2)\n"
            if observe.prometheus_binary is not None:
                seen += f"  Prometheus: {observe.prometheus_url}/\n"
        print(
            f"lab ready: {url}/productpage  (Host: {HOSTS[0]}; blue-green test: "
            f"Host: {HOSTS[1]})\n"
            f"{seen}"
            f"  curl -H 'Host: {HOSTS[0]}' {url}/productpage\n"
            f"  export MESH_DIR={lab.mesh.root}   # meshctl status | proxy-status | get\n"
            f"  {len(lab.plans)} pods + {GATEWAY_POD}; logs in {lab.mesh.logs}; Ctrl-C stops it",
            flush=True,
        )
        while True:
            for message in lab.restart_crashed():
                print(f"meshlab: {message}", file=sys.stderr, flush=True)
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("meshlab: stopping the lab ...", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the stop
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        lab.stop()
        if wrote_pid:
            pid_file.unlink(missing_ok=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    print("meshlab: stopped", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from mesh.cli.live import proxy_status_table
    from mesh.manager.observe import ManagerView, MeshState

    mesh = MeshDir(_mesh_dir(args))
    if not mesh.config.is_dir():
        print(
            f"meshlab: no lab at {mesh.root} (start one with meshlab up --local)", file=sys.stderr
        )
        return 2
    now = time.time()
    state = MeshState.read(mesh)
    manager = ManagerView.from_status(state.manager, now)
    rows = {row.pod: row for row in state.rows(now)}
    expected = [pod.name for pod in BOOKINFO_PODS] + [GATEWAY_POD]
    published = state.published()
    print(
        f"manager: {'running' if manager.alive else 'NOT RUNNING'}; published version "
        f"{published[0] if published else '-'}"
        + ("; last config REJECTED (see meshctl status)" if manager.rejected else "")
    )
    print(proxy_status_table(state, now))
    problems = [p for p in expected if p not in rows or not rows[p].ok]
    problems += [
        p for p, row in rows.items() if p not in expected and row.in_registry and not row.ok
    ]
    if not manager.alive:
        problems.append("manager")
    if problems:
        print(f"not ready or not synced: {', '.join(problems)}")
        return 1
    print(f"all {len(expected)} proxies ready and synced")
    return 0


def cmd_ready(args: argparse.Namespace) -> int:
    """Flip a pod's readiness through its sidecar's inbound port (works in any lab mode)."""
    import requests

    from mesh.manager.registry import read_registry

    wanted = args.state.lower()
    if wanted not in ("true", "false", "on", "off", "toggle"):
        print("meshlab ready: STATE is true|false|toggle", file=sys.stderr)
        return 2
    records, _ = read_registry(MeshDir(_mesh_dir(args)).registry)
    record = next((r for r in records if r.pod == args.pod), None)
    if record is None:
        print(f"meshlab ready: no pod {args.pod!r} in the registry", file=sys.stderr)
        return 1
    params = {} if wanted == "toggle" else {"ready": str(wanted in ("true", "on")).lower()}
    try:
        response = requests.post(
            f"http://{record.address}:{record.port}/health/toggle",
            params=params,
            timeout=5,
            proxies={"http": "", "https": ""},
        )
    except requests.RequestException as exc:
        print(f"meshlab ready: {args.pod} did not answer: {exc}", file=sys.stderr)
        return 1
    print(f"{args.pod}: {response.text.strip()}")
    return 0 if response.status_code in (200, 503) else 1


def cmd_console(args: argparse.Namespace) -> int:
    from mesh.console.run import main as console_main

    argv = ["--mesh-dir", str(_mesh_dir(args)), "--port", str(args.port)]
    argv += ["--prometheus", args.prometheus, "--bind", args.bind]
    return console_main(argv, prog="meshlab console")


def _env_port(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def cmd_down(args: argparse.Namespace) -> int:
    mesh = MeshDir(_mesh_dir(args))
    try:
        pid = int((mesh.root / LAB_PID).read_text().strip())
    except (OSError, ValueError):
        print(f"meshlab: no running lab recorded in {mesh.root / LAB_PID}", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        (mesh.root / LAB_PID).unlink(missing_ok=True)
        print(f"meshlab: the lab (pid {pid}) is not running", file=sys.stderr)
        return 1
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("meshlab: stopped")
            return 0
        time.sleep(0.1)
    print(f"meshlab: pid {pid} still running after 30 s", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshlab", description="Run the service-mesh lab.")
    parser.add_argument("--mesh-dir", help="the mesh directory (env MESH_DIR; default ./.mesh)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("up", help="start the lab in the foreground")
    p.add_argument("--local", action="store_true", help="as local processes (no Docker)")
    p.add_argument("--mesh-dir", dest="mesh_dir", default=argparse.SUPPRESS)
    p.add_argument("--gateway-port", type=int, default=GATEWAY_PORT, help="default 8080")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to become ready")
    p.add_argument("--baseline", default=str(BASELINE), help="scenario applied at start")
    p.add_argument("--no-baseline", action="store_true", help="start with the config as it is")
    p.add_argument(
        "--console-port", type=int, default=_env_port("CONSOLE_PORT", 20001),
        help="the console (env CONSOLE_PORT, default 20001)",
    )  # fmt: skip
    p.add_argument(
        "--prometheus-port", type=int, default=_env_port("PROMETHEUS_PORT", 9090),
        help="Prometheus, when on PATH (env PROMETHEUS_PORT, default 9090)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_up)
    p = commands.add_parser("status", help="exit 0 only when every pod is ready and synced")
    p.add_argument("--mesh-dir", dest="mesh_dir", default=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_status)
    p = commands.add_parser("ready", help="set a pod's readiness: meshlab ready POD true|false")
    p.add_argument("pod")
    p.add_argument("state", help="true|false|toggle")
    p.add_argument("--mesh-dir", dest="mesh_dir", default=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_ready)
    p = commands.add_parser("console", help="run the console (Kiali's role) on a mesh directory")
    p.add_argument("--mesh-dir", dest="mesh_dir", default=argparse.SUPPRESS)
    p.add_argument(
        "--port", type=int, default=_env_port("CONSOLE_PORT", 20001), help="default 20001"
    )
    p.add_argument(
        "--prometheus",
        default=f"http://127.0.0.1:{_env_port('PROMETHEUS_PORT', 9090)}",
        help="Prometheus base URL",
    )
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    p.set_defaults(handler=cmd_console)
    p = commands.add_parser("down", help="stop a local lab running in another terminal")
    p.add_argument("--mesh-dir", dest="mesh_dir", default=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_down)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for option in ("gateway_port", "console_port", "prometheus_port"):
        if not 0 < getattr(args, option, 1) < 65536:
            print(f"meshlab: --{option.replace('_', '-')} must be 1..65535", file=sys.stderr)
            return 2
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
