"""Which lab does a make target drive? ``python3 -m mesh.lab.dispatch COMMAND ...``.

Every lab-facing make target (each strategy, reset, readiness-fail/pass, status, down, logs,
exec, locust, verify-<strategy>, check-<exercise>) is one call of this module, which finds the
running lab itself and does the same thing on either:

- the **compose** lab: containers of compose project ``$MESHLAB_PROJECT`` (default
  ``meshlab``) exist; commands run through ``compose/lab.sh`` (meshctl in the manager
  container, the verify in the locust container);
- the **local** lab (``meshlab up --local``, no Docker): ``$MESH_DIR/lab.pid`` (default
  ``.mesh``) names a live process; commands run from the venv (``$VENV``, default ``.venv``)
  with ``MESH_DIR`` set, against the gateway ``$MESH_DIR/lab.json`` names.

``LAB=compose|local`` chooses when both run (or to insist on one); ``VERIFY_KUBE=1`` points
the verify targets at a real cluster instead. Standard library only: the
compose lab's host needs just python3, docker and make, no venv.

Primitives: ``choose(compose, local, wanted)`` (pure: which lab, or why none), ``LabInfo``
and ``read_lab_file`` (a local lab as ``meshlab up --local`` records it), ``render_help(makefiles)`` (``make help``: targets grouped, 80
columns), and one ``cmd_*`` per command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_FILE = "lab.json"  # the local lab's description (pods, ports, gateway): LocalLab writes it
LAB_PID = "lab.pid"  # the process of `meshlab up --local`, while it runs
DEFAULT_MESH_DIR = ".mesh"
DEFAULT_PROJECT = "meshlab"
COMPOSE_GATEWAY = "http://istio-ingressgateway:8080"  # as the locust container sees it
HELP_WIDTH = 80
# make help: groups in this order; a group another fragment names that is not listed here
# comes after them, in the order first seen.
HELP_GROUPS = ("lab", "strategies", "verify", "security", "observe", "develop")
START_HINT = "start one with `make up` (Docker) or `make up-local` (local processes, no Docker)"


class LabChoiceError(Exception):
    """No lab to drive, or two and no LAB= to choose; the message says what to do."""


def choose(compose: bool, local: bool, wanted: str = "") -> str:
    """``"compose"`` or ``"local"``: the lab a target drives, given which run and ``LAB``."""
    wanted = wanted.strip().lower()
    if wanted and wanted not in ("compose", "local"):
        raise LabChoiceError(f"LAB={wanted!r}: write LAB=compose or LAB=local")
    running = {"compose": compose, "local": local}
    if wanted:
        if not running[wanted]:
            raise LabChoiceError(f"LAB={wanted}, but no {wanted} lab is running: {START_HINT}")
        return wanted
    if compose and local:
        raise LabChoiceError(
            "both labs are running (compose and local): choose one with LAB=compose or LAB=local"
        )
    if not (compose or local):
        raise LabChoiceError(f"no lab is running: {START_HINT}")
    return "compose" if compose else "local"


# -- the local lab's record -------------------------------------------------------------------


@dataclass(frozen=True)
class LabInfo:
    """A local lab as ``meshlab up --local`` records it: its process (``lab.pid``, written
    while it runs) and its gateway (``lab.json``, the lab's description)."""

    pid: int
    gateway_url: str

    @property
    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, someone else's
        return True


def read_lab_file(mesh_root: Path) -> LabInfo | None:
    """The recorded local lab, or None (no record, or one this module cannot read). A lab a
    program runs in-process (``LocalLab`` in a test) writes no ``lab.pid``: it is not "the
    running lab" of make targets."""
    try:
        pid = int((mesh_root / LAB_PID).read_text().strip())
        data = json.loads((mesh_root / LAB_FILE).read_text())
        port = int(data["gateway"]["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return LabInfo(pid, f"http://127.0.0.1:{port}")


# -- finding the labs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Env:
    """The settings a make target passes in (environment or make variables)."""

    mesh_dir: Path
    project: str
    venv: Path
    wanted: str
    gateway_port: str
    locust_port: str

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> Env:
        mesh_dir = Path(environ.get("MESH_DIR") or DEFAULT_MESH_DIR)
        venv = Path(environ.get("VENV") or ".venv")
        return cls(
            mesh_dir=mesh_dir if mesh_dir.is_absolute() else Path.cwd() / mesh_dir,
            project=environ.get("MESHLAB_PROJECT") or DEFAULT_PROJECT,
            venv=venv if venv.is_absolute() else Path.cwd() / venv,
            wanted=environ.get("LAB", ""),
            gateway_port=environ.get("GATEWAY_PORT") or "8080",
            locust_port=environ.get("LOCUST_PORT") or "8089",
        )

    def tool(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def compose_present(project: str) -> bool:
    """Containers of the compose project exist (running or stopped: ``down`` must see them)."""
    if shutil.which("docker") is None:
        return False
    try:
        found = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0 and bool(found.stdout.split())


def local_lab(env: Env) -> LabInfo | None:
    info = read_lab_file(env.mesh_dir)
    return info if info is not None and info.alive else None


def find_lab(env: Env) -> str:
    return choose(compose_present(env.project), local_lab(env) is not None, env.wanted)


# -- running things --------------------------------------------------------------------------


def run(argv: Sequence[str], env: Env, *, stdin: Path | None = None) -> int:
    """Run ``argv`` with ``MESH_DIR`` set; its exit status."""
    child_env = {**os.environ, "MESH_DIR": str(env.mesh_dir), "MESHLAB_PROJECT": env.project}
    shown = [a.replace(f"{ROOT}/", "") for a in argv[1:]]
    print(f"[{Path(argv[0]).name}] {' '.join(shown)}", file=sys.stderr, flush=True)
    with open(stdin, "rb") if stdin is not None else open(os.devnull, "rb") as source:
        return subprocess.run(list(argv), env=child_env, stdin=source, cwd=ROOT).returncode


def lab_sh(*args: str) -> list[str]:
    return [str(ROOT / "compose" / "lab.sh"), *args]


def need_venv(env: Env) -> None:
    if not Path(env.tool("python")).exists():
        raise LabChoiceError(f"the local lab's tools are missing ({env.venv}): run `make install`")


def gateway_url(lab: str, env: Env) -> str:
    """The gateway as seen from the host."""
    if lab == "local":
        info = local_lab(env)
        return info.gateway_url if info else f"http://127.0.0.1:{env.gateway_port}"
    return f"http://localhost:{env.gateway_port}"


def apply_scenario(lab: str, env: Env, name: str) -> int:
    """``meshctl apply -f scenarios/NAME.yaml --wait`` on the lab (``reset`` and the security
    stages, each a whole state, also prune)."""
    prune = ["--prune"] if name == "reset" or name.startswith(("mtls-", "authz-")) else []
    if not (ROOT / "scenarios" / f"{name}.yaml").is_file():
        raise LabChoiceError(f"no scenario scenarios/{name}.yaml")
    if lab == "compose":
        return run(lab_sh("apply", name, *prune), env)
    need_venv(env)
    path = str(ROOT / "scenarios" / f"{name}.yaml")
    return run([env.tool("meshctl"), "apply", *prune, "-f", path, "--wait"], env)


def apply_with_baseline(lab: str, env: Env, path: Path) -> int:
    """The baseline plus a trainee's file (``--prune``: whatever else was applied goes)."""
    if lab == "compose":
        args = ["compose", "exec", "-T", "manager", "meshctl", "apply", "--prune"]
        args += ["-f", "/app/scenarios/reset.yaml", "-f", "-", "--wait"]
        return run(lab_sh(*args), env, stdin=path)
    need_venv(env)
    baseline = str(ROOT / "scenarios" / "reset.yaml")
    argv = [env.tool("meshctl"), "apply", "--prune", "-f", baseline, "-f", str(path), "--wait"]
    return run(argv, env)


def run_verify(lab: str, env: Env, name: str, extra: Sequence[str]) -> int:
    if lab == "compose":
        argv = ["compose", "exec", "-T", "locust", "python", "-m", "loadtests.verify", name]
        return run(lab_sh(*argv, "--gateway", COMPOSE_GATEWAY, *extra), env)
    need_venv(env)
    argv = [env.tool("python"), "-m", "loadtests.verify", name, "--gateway", gateway_url(lab, env)]
    return run([*argv, "--mesh-dir", str(env.mesh_dir), *extra], env)


# -- commands --------------------------------------------------------------------------------


def cmd_which(args: argparse.Namespace, env: Env) -> int:
    lab = find_lab(env)
    where = env.mesh_dir if lab == "local" else f"compose project {env.project}"
    print(f"{lab} lab ({where}); gateway {gateway_url(lab, env)}")
    return 0


def cmd_apply(args: argparse.Namespace, env: Env) -> int:
    lab = find_lab(env)
    code = apply_scenario(lab, env, args.scenario)
    if code == 0:
        print(f"\n  {args.scenario} applied to the {lab} lab: {gateway_url(lab, env)}/productpage")
    return code


def cmd_ready(args: argparse.Namespace, env: Env) -> int:
    """Make a pod pass or fail its readiness probe (through its sidecar, registry address)."""
    lab = find_lab(env)
    if lab == "compose":
        argv = ["compose", "exec", "-T", "manager", "meshlab", "ready", args.pod, args.state]
        return run(lab_sh(*argv), env)
    need_venv(env)
    return run([env.tool("meshlab"), "ready", args.pod, args.state], env)


def cmd_status(args: argparse.Namespace, env: Env) -> int:
    lab = find_lab(env)
    if lab == "compose":
        return run(lab_sh("status"), env)
    need_venv(env)
    print(f"local lab: {env.mesh_dir}; gateway {gateway_url(lab, env)}")
    return run([env.tool("meshlab"), "status"], env)


def cmd_down(args: argparse.Namespace, env: Env) -> int:
    try:
        lab = find_lab(env)
    except LabChoiceError as exc:
        if "no lab is running" not in str(exc):
            raise
        print("no lab is running: nothing to stop")
        return 0
    if lab == "compose":
        return run(lab_sh("down"), env)
    need_venv(env)
    return run([env.tool("meshlab"), "down"], env)


def cmd_logs(args: argparse.Namespace, env: Env) -> int:
    lab = find_lab(env)
    if lab == "compose":
        return run(lab_sh("logs", *args.service), env)
    logs = env.mesh_dir / "logs"
    files = [str(logs / f"{s}.log") for s in args.service] or sorted(map(str, logs.glob("*.log")))
    return foreground(["tail", "-n", "20", "-F", *files], env)


def foreground(argv: Sequence[str], env: Env, stopped_codes: Iterable[int] = (0,)) -> int:
    """Run a long-lived program in the foreground until it ends or the user presses Ctrl-C.

    Ctrl-C reaches the program from the terminal (same process group); this process only
    waits for it, and the program's exit codes after Ctrl-C in ``stopped_codes`` (Locust says
    1 when the run saw errors: a fault demo) count as a clean stop (0), so make prints no
    error."""
    interrupted = {"yes": False}

    def on_interrupt(_signum: int, _frame: object) -> None:
        interrupted["yes"] = True  # a handler, not SIG_IGN: the child must not inherit it

    signal.signal(signal.SIGINT, on_interrupt)
    child_env = {**os.environ, "MESH_DIR": str(env.mesh_dir)}
    code = subprocess.Popen(list(argv), env=child_env, cwd=ROOT).wait()
    if interrupted["yes"] and code in (*stopped_codes, -signal.SIGINT, 130):
        return 0
    return code


def cmd_locust(args: argparse.Namespace, env: Env) -> int:
    lab = find_lab(env)
    if lab == "compose":
        print(
            f"Locust runs in the compose lab: http://localhost:{env.locust_port}\n"
            f"  its Versions tab and http://localhost:{env.locust_port}/versions show the split"
        )
        return 0
    need_venv(env)
    bind = os.environ.get("LAB_BIND") or "127.0.0.1"
    argv = [env.tool("locust"), "-f", str(ROOT / "loadtests" / "locustfile.py")]
    argv += ["--host", gateway_url(lab, env), "--web-host", bind, "--web-port", env.locust_port]
    print(
        f"Locust against the local lab ({gateway_url(lab, env)}): "
        f"http://{'localhost' if bind == '127.0.0.1' else bind}:{env.locust_port}  "
        "(Ctrl-C stops it)",
        flush=True,
    )
    return foreground([*argv, *args.extra], env, stopped_codes=(0, 1))


def cmd_verify(args: argparse.Namespace, env: Env) -> int:
    if os.environ.get("VERIFY_KUBE", "").strip():
        return verify_on_cluster(env, args.strategy, args.extra)
    lab = find_lab(env)
    code = apply_scenario(lab, env, args.strategy)
    return code if code else run_verify(lab, env, args.strategy, args.extra)


def verify_on_cluster(env: Env, name: str, extra: Sequence[str]) -> int:
    """``VERIFY_KUBE=1``: a real cluster (``meshlab export kube``) instead of a lab. kubectl
    applies the scenario (``reset`` first deletes every VirtualService, DestinationRule and
    Gateway of ``default``), Istio gets ``VERIFY_KUBE_SETTLE`` seconds to push it, and the
    verify runs from the venv against ``VERIFY_GATEWAY`` (the ingress URL)."""
    need_venv(env)
    scenario = ROOT / "scenarios" / f"{name}.yaml"
    if not scenario.is_file():
        raise LabChoiceError(f"no scenario scenarios/{name}.yaml")
    if name == "reset":
        kinds = "virtualservices,destinationrules,gateways"
        code = run(["kubectl", "delete", kinds, "--all", "-n", "default"], env)
        if code:
            return code
    code = run(["kubectl", "apply", "-f", str(scenario)], env)
    if code:
        return code
    time.sleep(float(os.environ.get("VERIFY_KUBE_SETTLE") or 5))
    gateway = os.environ.get("VERIFY_GATEWAY") or f"http://127.0.0.1:{env.gateway_port}"
    return run(
        [env.tool("python"), "-m", "loadtests.verify", name, "--gateway", gateway, *extra], env
    )


def cmd_exec(args: argparse.Namespace, env: Env) -> int:
    """Run a shell command beside a pod (kubectl exec's role): its HTTP goes through that
    pod's sidecar."""
    if not args.pod or not args.cmd:
        raise LabChoiceError("usage: make exec POD=<pod> CMD='<command>'")
    lab = find_lab(env)
    if lab == "compose":
        return run(lab_sh("exec", args.pod, "sh", "-c", args.cmd), env)
    need_venv(env)
    return run([env.tool("meshlab"), "exec", args.pod, "--", "sh", "-c", args.cmd], env)


def cmd_check(args: argparse.Namespace, env: Env) -> int:
    """A trainee's YAML against an exercise: ``meshctl route`` comparisons (no lab needed
    when the venv is there), then, for exercises that need traffic, applied to the running
    lab with the baseline and proved by the strategy's verify."""
    sys.path.insert(0, str(ROOT))
    from loadtests.exercises import EXERCISES

    exercise = EXERCISES.get(args.exercise)
    if exercise is None:
        raise LabChoiceError(f"no exercise {args.exercise!r}; exercises: {', '.join(EXERCISES)}")
    if not args.file:
        raise LabChoiceError(f"give your YAML: make check-{args.exercise} FILE=path/to/mine.yaml")
    path = Path(args.file).resolve()
    if not path.is_file():
        raise LabChoiceError(f"FILE={args.file}: no such file")
    code = 0
    if exercise.probes:
        if Path(env.tool("python")).exists():
            code = run([env.tool("python"), "-m", "loadtests.check", exercise.name, str(path)], env)
        else:  # no venv on this host: the compose lab's manager has the same code
            if find_lab(env) != "compose":
                need_venv(env)
            argv = ["compose", "exec", "-T", "manager", "python", "-m", "loadtests.check"]
            code = run(lab_sh(*argv, exercise.name, "-"), env, stdin=path)
    if code or not exercise.verify:
        return code
    lab = find_lab(env)
    print(f"\n{exercise.name} needs traffic: applying your file to the {lab} lab, then verifying")
    code = apply_with_baseline(lab, env, path)
    return code if code else run_verify(lab, env, exercise.verify, args.extra)


# -- make help -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HelpEntry:
    group: str
    target: str
    text: str


def help_entries(lines: Iterable[str]) -> list[HelpEntry]:
    """``##@ group`` starts a section (until the next one, or the file's end); a target line
    ``name: ... ## text`` joins the current section ("develop" before any)."""
    group = "develop"
    found = []
    for line in lines:
        if line.startswith("##@"):
            group = line[3:].strip().lower() or "develop"
            continue
        head, sep, text = line.partition(" ## ")
        if not sep or line[:1] in (" ", "\t", "#") or ":" not in head:
            continue
        target = head.split(":", 1)[0].strip()
        if target and not target.startswith(".") and " " not in target and "=" not in head:
            found.append(HelpEntry(group, target, text.strip()))
    return found


def render_help(makefiles: Sequence[Path], width: int = HELP_WIDTH) -> str:
    # A file named twice (to list its targets first) counts once.
    unique = dict.fromkeys(m.resolve() for m in makefiles)
    entries = [e for m in unique for e in help_entries(m.read_text().splitlines())]
    order = list(HELP_GROUPS) + [e.group for e in entries if e.group not in HELP_GROUPS]
    column = min(max((len(e.target) for e in entries), default=10) + 2, 28)
    out = ["usage: make TARGET [VAR=value ...]   (LAB=compose|local when both labs run)"]
    for group in dict.fromkeys(order):
        rows = [e for e in entries if e.group == group]
        if not rows:
            continue
        out.append(f"\n{group}:")
        for entry in rows:
            lead = f"  {entry.target:<{column}}"
            if len(lead) > column + 2:
                out.append(lead.rstrip())
                lead = " " * (column + 2)
            wrapped = textwrap.wrap(entry.text, width - len(lead)) or [""]
            out.append(lead + wrapped[0])
            out.extend(" " * len(lead) + more for more in wrapped[1:])
    return "\n".join(out)


def cmd_help(args: argparse.Namespace, env: Env) -> int:
    print(render_help([Path(m) for m in args.makefiles]))
    return 0


# -- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m mesh.lab.dispatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, handler: Callable[[argparse.Namespace, Env], int], help: str
    ) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help)
        p.set_defaults(handler=handler)
        return p

    add("which", cmd_which, help="say which lab the targets drive")
    add("apply", cmd_apply, help="apply scenarios/NAME.yaml").add_argument("scenario")
    p = add("ready", cmd_ready, help="make a pod pass or fail its readiness probe")
    p.add_argument("pod")
    p.add_argument("state", choices=["true", "false"])
    add("status", cmd_status, help="is every pod ready and synced?")
    add("down", cmd_down, help="stop the lab")
    add("logs", cmd_logs, help="follow the logs").add_argument("service", nargs="*")
    add("locust", cmd_locust, help="Locust's web UI").add_argument("extra", nargs="*")
    p = add("verify", cmd_verify, help="apply a strategy and verify it with traffic")
    p.add_argument("strategy")
    p.add_argument("extra", nargs="*")
    p = add("check", cmd_check, help="check a trainee's YAML against an exercise")
    p.add_argument("exercise")
    p.add_argument("file", nargs="?", default="")
    p.add_argument("extra", nargs="*")
    p = add("exec", cmd_exec, help="run a command beside a pod")
    p.add_argument("pod", nargs="?", default="")
    p.add_argument("cmd", nargs="?", default="")
    add("help", cmd_help, help="make help").add_argument("makefiles", nargs="+")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = Env.from_environ(dict(os.environ))
    try:
        return int(args.handler(args, env))
    except LabChoiceError as exc:
        print(f"meshlab: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
