"""meshlab: runs the lab (kind's role). ``meshlab up --local``, ``meshlab status``, ``meshlab console``.

``up --local [--profile P | --workloads FILE...]`` starts the whole lab as local processes
(``mesh.lab.local.LocalLab``) in the foreground and stops every child on Ctrl-C or SIGTERM;
bad manifests are refused with file:line before anything starts. ``status`` prints the
proxy-status table and exits 0 only when every pod (and the gateway) is ready and synced.
``ready POD true|false`` flips a pod's readiness probe (the readiness scenario). ``exec POD --
CMD...`` runs a command beside a pod, as ``kubectl exec``: its HTTP goes through that pod's
sidecar. ``export kube`` writes the manifests and Istio config for a real cluster. ``down``
stops a lab started in another terminal on the same mesh directory. ``console`` runs the
console (Kiali's role) on a mesh directory in the foreground; ``up --local`` already starts
one, with Prometheus when a ``prometheus`` binary is on PATH.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mesh.lab.dispatch import DEFAULT_MESH_DIR, LAB_FILE, LAB_PID
from mesh.lab.local import GATEWAY_PORT, PROFILE_BASELINE
from mesh.meshdir import MeshDir, read_json


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
    from mesh.lab.workloads import WorkloadError

    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum
        raise KeyboardInterrupt

    # Both explicitly: a shell starting meshlab in the background without job control
    # leaves SIGINT ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    mesh_dir = _mesh_dir(args)
    if args.profile and args.workloads:
        print("meshlab: give --profile or --workloads, not both", file=sys.stderr)
        return 2
    baseline = (
        None if args.no_baseline else Path(args.baseline) if args.baseline else PROFILE_BASELINE
    )
    if baseline not in (None, PROFILE_BASELINE) and not baseline.is_file():
        print(f"meshlab: baseline {baseline} not found (--baseline PATH)", file=sys.stderr)
        return 2
    try:
        lab = LocalLab(
            mesh_dir,
            gateway_port=args.gateway_port,
            out=sys.stdout,
            baseline=baseline,
            profile=args.profile,
            workloads=args.workloads or (),
            console_port=args.console_port,
            prometheus_port=args.prometheus_port,
        )
    except WorkloadError as exc:
        print(f"meshlab: {exc}", file=sys.stderr)
        return 1
    pid_file = lab.mesh.root / LAB_PID
    wrote_pid = False
    try:
        try:
            lab.start(timeout=args.timeout)
        except (LabError, OSError) as exc:
            print(f"meshlab: {exc}", file=sys.stderr)
            return 1
        # lab.pid: this process runs the lab; `meshlab down` and the make targets
        # (mesh.lab.dispatch, with lab.json for the gateway) find it by it.
        pid_file.write_text(f"{os.getpid()}\n")
        wrote_pid = True
        url = lab.gateway_url
        default = (Path.cwd() / DEFAULT_MESH_DIR).resolve() == lab.mesh.root
        make_env = "" if default else f" (with MESH_DIR={lab.mesh.root})"
        observe = lab.observability
        seen = ""
        if observe is not None:
            seen = f"  console: {observe.console_url}/  (graph, timeline, traces; Zipkin API /api/v2)\n"
            if observe.prometheus_binary is not None:
                seen += f"  Prometheus: {observe.prometheus_url}/\n"
        what = f"profile {lab.profile}" if lab.profile else "workloads"
        if lab.baseline is None:
            what += " (no traffic config: apply a Gateway first)"
        print(
            f"lab ready: {url}/productpage  (Host: {HOSTS[0]}; blue-green test: "
            f"Host: {HOSTS[1]})\n"
            f"{seen}"
            f"  curl -H 'Host: {HOSTS[0]}' {url}/productpage\n"
            f"  make targets drive this lab{make_env}: make canary-70-30, make status, "
            f"make locust, make down\n"
            f"  export MESH_DIR={lab.mesh.root}   # meshctl status | proxy-status | get\n"
            f"  {what}: {len(lab.plans)} pods + {lab.gateway.name}; logs in {lab.mesh.logs}; "
            "Ctrl-C stops it",
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
    from mesh.cli.world import mesh_topology
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
    expected = [pod.name for pod in mesh_topology(mesh).pods]
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


def cmd_exec(args: argparse.Namespace) -> int:
    """``kubectl exec``'s role in the local lab: run CMD with the pod's view of the network
    (``http_proxy`` at its sidecar's outbound port, as the app in that pod has it)."""
    command = list(args.command)
    # Options may come after POD too (argparse's REMAINDER took them): up to "--".
    while command and command[0] in ("-n", "--namespace", "--mesh-dir") and len(command) > 1:
        option, value, command = command[0], command[1], command[2:]
        setattr(args, "mesh_dir" if option == "--mesh-dir" else "namespace", value)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("meshlab exec: give a command: meshlab exec POD -- CMD [ARGS...]", file=sys.stderr)
        return 2
    mesh = MeshDir(_mesh_dir(args))
    lab = read_json(mesh.root / LAB_FILE)
    if lab is None:
        print(
            f"meshlab exec: no local lab at {mesh.root} (meshlab up --local; in the compose "
            "lab: make exec POD=... CMD=...)",
            file=sys.stderr,
        )
        return 2
    pods = lab.get("pods") or {}
    name = args.pod
    if name not in pods:
        # NAME.NAMESPACE, or NAME with -n NAMESPACE, or a Deployment with replicas.
        wanted = f"{name}.{args.namespace}" if args.namespace not in (None, "default") else name
        matches = [p for p in pods if p == wanted or p.startswith(f"{wanted}-")]
        if not matches:
            print(f"meshlab exec: no pod {name!r}; pods: {', '.join(pods)}", file=sys.stderr)
            return 1
        name = matches[0]
    pod = pods[name]
    env = dict(os.environ)
    for key in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(key, None)
    # The pod's app reaches Services through its sidecar (explicit interception); a pod
    # without one through the node's plain Service routing — the same agent, in plain mode.
    proxy = f"http://127.0.0.1:{pod['outbound_port']}"
    env.update(
        {
            "http_proxy": proxy,
            "HTTP_PROXY": proxy,
            "no_proxy": "localhost,127.0.0.1",
            "NO_PROXY": "localhost,127.0.0.1",
            "POD_NAME": name,
            "POD_NAMESPACE": str(pod.get("namespace", "default")),
        }
    )
    # The lab's own tools (fortio) beside this interpreter come first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        print(f"meshlab exec: {command[0]}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached


EXPORT_README = """\
# {what}, exported by `meshlab export kube` for a real cluster

- `workloads.yaml`: the lab's pods as Kubernetes manifests, images: {images}
- `istio-config.yaml`: the profile's starting Istio config{baseline}

On kind with Istio (istioctl and kind installed):

```sh
kind create cluster --name meshlab
istioctl install --set profile=demo -y
kubectl label namespace default istio-injection=enabled
kind load docker-image {image} --name meshlab    # the lab's image, built by `make image`
kubectl apply -f workloads.yaml
kubectl wait --for=condition=available deployment --all --timeout=300s
{apply_baseline}kubectl -n istio-system port-forward svc/istio-ingressgateway 8080:80 &
```

Then, from the meshlab repository, the same checks as in the lab, against the cluster:
`make verify-canary-70-30 VERIFY_KUBE=1 VERIFY_GATEWAY=http://127.0.0.1:8080` (kubectl
applies `scenarios/canary-70-30.yaml`, the verify runs on this machine). They read
`x-served-by`, which the lab's image sends (not Istio's own images: `--istio-images` exports
are for following istio.io, not for `verify`), and `verify-readiness` cannot run there: it
flips a pod's probe through the lab's mesh directory.
"""


def cmd_export(args: argparse.Namespace) -> int:
    import shutil

    import yaml

    from mesh.lab.workloads import WorkloadError, lab_entries, lab_workloads, load_profile
    from mesh.workloads.export import export_documents

    if args.target != "kube":
        print("meshlab export: only `kube` is known (Kubernetes manifests)", file=sys.stderr)
        return 2
    if args.profile and args.workloads:
        print("meshlab export: give --profile or --workloads, not both", file=sys.stderr)
        return 2
    profile = None if args.workloads else (args.profile or "course")
    try:
        workloads = lab_workloads(lab_entries(profile, args.workloads or ()))
        baseline = load_profile(profile).baseline if profile else None
    except WorkloadError as exc:
        print(f"meshlab export: {exc}", file=sys.stderr)
        return 1
    documents = export_documents(
        workloads.manifests, image=args.image, istio_images=args.istio_images
    )
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    text = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in documents)
    (out / "workloads.yaml").write_text(text)
    config = out / "istio-config.yaml"
    config.unlink(missing_ok=True)
    if baseline is not None:
        shutil.copyfile(baseline, config)
    what = f"Profile {profile}" if profile else "Workloads " + " ".join(args.workloads)
    (out / "README.md").write_text(
        EXPORT_README.format(
            what=what,
            images=(
                f"Istio's own where it has one, else {args.image}"
                if args.istio_images
                else f"the lab's, {args.image}"
            ),
            image=args.image,
            baseline=f" ({baseline.name})" if baseline else ": none (apply a Gateway first)",
            apply_baseline="kubectl apply -f istio-config.yaml\n" if baseline else "",
        )
    )
    print(
        f"meshlab: wrote {len(documents)} manifests to {out / 'workloads.yaml'}"
        + (f" and {config.name}" if baseline else "")
        + f"; see {out / 'README.md'}"
    )
    return 0


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
    p.add_argument(
        "--profile", help="workload profile: course (default), istio, httpbin, security, ..."
    )
    p.add_argument(
        "--workloads", nargs="+", metavar="FILE",
        help="run exactly these Kubernetes manifests (FILE or FILE=NAMESPACE), no baseline",
    )  # fmt: skip
    p.add_argument("--baseline", help="config applied at start (default: the profile's)")
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
    p = commands.add_parser(
        "exec",
        help="run a command beside a pod: meshlab exec sleep -- curl -s http://httpbin:8000/get",
    )
    p.add_argument("pod")
    p.add_argument("-n", "--namespace", help="the pod's namespace (or write POD.NAMESPACE)")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.add_argument("--mesh-dir", dest="mesh_dir", default=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_exec)
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
    p = commands.add_parser(
        "export", help="export kube: the workloads and Istio config for a real cluster"
    )
    p.add_argument("target", choices=["kube"])
    p.add_argument("--profile", help="default: course")
    p.add_argument("--workloads", nargs="+", metavar="FILE")
    p.add_argument(
        "--image", default="meshlab:latest",
        help="the lab's image as the cluster pulls it (default meshlab:latest: kind load it)",
    )  # fmt: skip
    p.add_argument(
        "--istio-images", action="store_true",
        help="keep Istio's own images (Bookinfo, httpbin, curl, fortio) where it has them",
    )  # fmt: skip
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.set_defaults(handler=cmd_export)
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
