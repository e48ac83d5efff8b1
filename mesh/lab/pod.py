"""The pod supervisor: one Bookinfo app and its sidecar as two child processes.

``python -m mesh.lab.pod POD_NAME [--mesh-dir DIR] [ports...]`` is the entry point of every pod
container (and may serve process mode too). It looks the pod up in
the lab's workloads (``--workloads FILE...`` or ``$MESHLAB_WORKLOADS``, else the default
profile; see :mod:`mesh.lab.workloads`) and starts

- the app under gunicorn (``gunicorn -c python:services.gunicorn_conf '<app_module(pod)>'``)
  on ``127.0.0.1:<app-port>``, with ``HTTP_PROXY`` pointing at the sidecar's outbound
  listener (explicit interception, see DESIGN.md), and
- the sidecar (``python -OO -m mesh.sidecar --pod ... --inbound-port <service-port> ...``), whose
  readiness prober checks the app with the pod's ``readinessProbe``. A pod without a sidecar
  (``sidecar.istio.io/inject: "false"``) gets the app on its service port and the same
  program with ``--no-sidecar`` in the role of the node's agent (registration, probe,
  kube-proxy's plain Service routing).

With ``--secrets-dir DIR`` (env ``MESH_SECRETS_DIR``: pod-private, a tmpfs under compose,
``<lab>/pods/<pod>/secrets`` in process mode) a pod with a proxy also runs its workload agent
(``python -m mesh.agent``, Istio's pilot-agent SDS role: the pod's key, CSR and certificate,
renewed at half-life) and its sidecar gets ``MESH_SECRETS_DIR``. A pod without a sidecar
gets neither: it has no identity, as in Istio.

The ingress gateway is a pod too (``proxy: gateway``): its supervisor runs the agent and the
sidecar in gateway mode (``build_gateway``), no app.

A client pod (``sleep``, ``fortio``) runs ``python -m services.sleep`` as its app: it serves
nothing and waits, so that ``meshlab exec`` / ``docker exec`` run commands beside it.

Supervision follows the container rule "one dies, the pod dies": when either child exits the
supervisor stops the other (SIGTERM, then SIGKILL to its process group after a grace period)
and exits with the first child's exit code (128+N for a child killed by signal N). SIGTERM and
SIGINT received by the supervisor are forwarded to both children; an orderly stop exits 0 when
both children exit cleanly (0, or killed by the forwarded signal).

Primitives: :func:`subprocess.Popen` with each child in its own process group (a terminal's
Ctrl-C reaches a child once, through the supervisor) and ``PR_SET_PDEATHSIG`` (a child dies if
the supervisor is SIGKILLed), :func:`signal.set_wakeup_fd` on a pipe plus :func:`select.select`
so that SIGCHLD, SIGTERM and SIGINT wake one blocking loop without polling.

:func:`build_children` is the pure part (a :class:`~mesh.topology.Pod` plus ports to two
:class:`ChildSpec` command lines and environments); :func:`supervise` runs any children.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

from mesh.sidecar.memory_budget import proxy_argv
from mesh.topology import Pod

SERVICE_PORT = 9080
OUTBOUND_PORT = 15001
ADMIN_PORT = 15000
APP_PORT = SERVICE_PORT + 1
# Programs that serve nothing: client pods to exec commands in.
CLIENT_PROGRAMS = ("sleep", "fortio")
GUNICORN_CONF = "python:services.gunicorn_conf"
DEFAULT_GRACE_SECONDS = 8.0  # below Docker's default 10 s stop timeout


@dataclass(frozen=True)
class PodPorts:
    """The ports of one pod: a container's defaults, or a pod's own in process mode."""

    service: int = SERVICE_PORT
    app: int = APP_PORT
    outbound: int = OUTBOUND_PORT
    admin: int = ADMIN_PORT


@dataclass(frozen=True)
class ChildSpec:
    """One child process: a name for logs, its argv and its complete environment."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


def container_ports(pod: Pod) -> PodPorts:
    """A pod's ports inside its own container: the sidecar on the pod's port, the app one
    above it (the same numbers every container uses; process mode picks free ones)."""
    return PodPorts(pod.port, pod.port + 1, OUTBOUND_PORT, ADMIN_PORT)


def find_pod(name: str, pods: Sequence[Pod]) -> Pod:
    for pod in pods:
        if pod.name == name:
            return pod
    known = ", ".join(p.name for p in pods)
    raise KeyError(f"unknown pod {name!r}; the topology has: {known}")


def app_module(pod: Pod) -> str:
    """The gunicorn application spec of the program that runs in ``pod``."""
    return f"services.{pod.runs}.app:create_app()"


def app_argv(pod: Pod, python: str) -> tuple[str, ...]:
    if pod.runs in CLIENT_PROGRAMS:
        return (python, "-m", "services.sleep")
    return (python, "-m", "gunicorn", "-c", GUNICORN_CONF, app_module(pod))


def _fmt_seconds(value: float) -> str:
    return f"{value:g}"


def build_children(
    pod: Pod,
    *,
    mesh_dir: str,
    ports: PodPorts = PodPorts(),
    bind_address: str = "0.0.0.0",
    advertise_address: str = "127.0.0.1",
    python: str = sys.executable,
    base_env: Mapping[str, str] | None = None,
) -> tuple[ChildSpec, ChildSpec]:
    """The app and sidecar command lines and environments of ``pod`` (pure: no I/O)."""
    env = dict(os.environ if base_env is None else base_env)
    proxy = f"http://127.0.0.1:{ports.outbound}"
    no_proxy = "localhost,127.0.0.1"
    plain = pod.proxy == "none"
    # Without a sidecar the app listens on the pod's own port, where others reach it.
    app_port = ports.service if plain else ports.app
    app_env = {
        **env,
        **pod.env,
        "PORT": str(app_port),
        "SERVICE_NAME": pod.service,
        "SERVICE_VERSION": pod.env.get("SERVICE_VERSION") or pod.version,
        "POD_NAME": pod.name,
        "POD_NAMESPACE": pod.namespace,
        # Both spellings: urllib (and so requests) prefers the lowercase one when set.
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }
    if plain:
        app_env["BIND"] = f"{bind_address}:{app_port}"
    app = ChildSpec(name="app", argv=app_argv(pod, python), env=app_env)
    probe = pod.readiness
    labels = ",".join(f"{k}={v}" for k, v in pod.labels.items())
    options: list[tuple[str, str]] = [
        ("--pod", pod.name),
        ("--service", pod.service),
        ("--labels", labels),
        ("--namespace", pod.namespace),
        ("--service-account", pod.service_account),
        ("--workload", pod.workload_name),
        ("--mesh-dir", mesh_dir),
        *([] if plain else [("--inbound-port", str(ports.service))]),
        *([] if plain or ports.service == pod.port else [("--container-port", str(pod.port))]),
        ("--app-port", str(app_port)),
        ("--outbound-port", str(ports.outbound)),
        ("--admin-port", str(ports.admin)),
        ("--bind-address", bind_address),
        ("--advertise-address", advertise_address),
    ]
    if probe is not None:  # no readinessProbe: Kubernetes counts the pod ready at once
        options += [
            ("--probe-path", probe.path),
            ("--probe-initial-delay", _fmt_seconds(probe.initial_delay_seconds)),
            ("--probe-period", _fmt_seconds(probe.period_seconds)),
            ("--probe-timeout", _fmt_seconds(probe.timeout_seconds)),
            ("--probe-failure-threshold", str(probe.failure_threshold)),
            ("--probe-success-threshold", str(probe.success_threshold)),
        ]
    flags = ("--no-sidecar",) if plain else ()
    sidecar = ChildSpec(
        name="sidecar",
        argv=(*proxy_argv(python), *(part for pair in options for part in pair), *flags),
        env={**env, "MESH_DIR": mesh_dir},
    )
    return app, sidecar


def build_agent(
    pod: Pod,
    *,
    mesh_dir: str,
    secrets_dir: str,
    python: str = sys.executable,
    base_env: Mapping[str, str] | None = None,
) -> ChildSpec:
    """The workload agent of ``pod`` (pure: no I/O)."""
    env = dict(os.environ if base_env is None else base_env)
    argv = (
        python, "-m", "mesh.agent", "--pod", pod.name, "--namespace", pod.namespace,
        "--service-account", pod.service_account, "--mesh-dir", mesh_dir,
        "--secrets-dir", secrets_dir,
    )  # fmt: skip
    return ChildSpec(
        name="agent", argv=argv, env={**env, "MESH_DIR": mesh_dir, "MESH_SECRETS_DIR": secrets_dir}
    )


def build_gateway(
    pod: Pod,
    *,
    mesh_dir: str,
    admin_port: int = ADMIN_PORT,
    bind_address: str = "0.0.0.0",
    advertise_address: str = "127.0.0.1",
    port_map: str = "",
    python: str = sys.executable,
    base_env: Mapping[str, str] | None = None,
) -> ChildSpec:
    """The ingress gateway proxy of a ``proxy: gateway`` pod (pure: no I/O)."""
    env = dict(os.environ if base_env is None else base_env)
    labels = ",".join(f"{k}={v}" for k, v in pod.labels.items())
    argv = [
        *proxy_argv(python), "--gateway", "--pod", pod.name,
        "--labels", labels, "--service", pod.service, "--namespace", pod.namespace,
        "--service-account", pod.service_account, "--workload", pod.workload_name,
        "--mesh-dir", mesh_dir,
        "--admin-port", str(admin_port), "--bind-address", bind_address,
        "--advertise-address", advertise_address,
    ]  # fmt: skip
    if port_map:
        argv += ["--gateway-port-map", port_map]
    return ChildSpec(name="gateway", argv=tuple(argv), env={**env, "MESH_DIR": mesh_dir})


def with_secrets(spec: ChildSpec, secrets_dir: str) -> ChildSpec:
    """``spec`` with ``MESH_SECRETS_DIR``: where its proxy finds the agent's certificate."""
    return ChildSpec(spec.name, spec.argv, {**spec.env, "MESH_SECRETS_DIR": secrets_dir})


def default_advertise_address(bind_address: str) -> str:
    """Where other pods reach this one when ``--advertise-address`` is not given.

    A loopback bind is local mode (127.0.0.1); a specific address is itself; a wildcard bind
    advertises this host's name resolved (a container's own address under compose).
    """
    try:
        ip = ipaddress.ip_address(bind_address)
    except ValueError:
        return bind_address
    if ip.is_loopback:
        return "127.0.0.1"
    if not ip.is_unspecified:
        return bind_address
    try:
        resolved = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return resolved


def _log(message: str) -> None:
    print(f"[pod] {message}", file=sys.stderr, flush=True)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _die_with_parent() -> None:
    """Child-side: get SIGTERM when the supervisor dies (Linux ``PR_SET_PDEATHSIG``)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _spawn(spec: ChildSpec) -> subprocess.Popen[bytes]:
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    proc = subprocess.Popen(
        list(spec.argv), env=dict(spec.env), process_group=0, preexec_fn=preexec
    )
    _log(f"started {spec.name} (pid {proc.pid}): {' '.join(spec.argv)}")
    return proc


def _signal(proc: subprocess.Popen[bytes], signum: int, *, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)


def supervise(
    children: Sequence[ChildSpec], *, grace_seconds: float = DEFAULT_GRACE_SECONDS
) -> int:
    """Run ``children`` until one exits or a signal stops them; return the pod's exit code."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD:
            received.append(signum)

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
    previous = {s: signal.signal(s, on_signal) for s in handled}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    procs: list[tuple[ChildSpec, subprocess.Popen[bytes]]] = []
    try:
        for spec in children:
            procs.append((spec, _spawn(spec)))
        first: tuple[ChildSpec, int] | None = None
        stop_signal: int | None = None
        stop_deadline: float | None = None
        killed = False
        reported: set[int] = set()
        while True:
            if received and stop_signal is None and first is None:
                stop_signal = received[0]
                _log(f"got {signal.Signals(stop_signal).name}; forwarding to the children")
            for spec, proc in procs:
                rc = proc.poll()
                if rc is None or proc.pid in reported:
                    continue
                reported.add(proc.pid)
                if first is None and stop_signal is None:
                    first = (spec, rc)
                    _log(f"{spec.name} exited with {_exit_code(rc)}; stopping the pod")
                else:
                    _log(f"{spec.name} exited with {_exit_code(rc)}")
            if (first is not None or stop_signal is not None) and stop_deadline is None:
                stop_deadline = time.monotonic() + grace_seconds
                for _spec, proc in procs:
                    if proc.poll() is None:
                        _signal(proc, stop_signal or signal.SIGTERM)
            if all(proc.poll() is not None for _spec, proc in procs):
                break
            timeout = 1.0
            if stop_deadline is not None:
                left = stop_deadline - time.monotonic()
                if left <= 0 and not killed:
                    for spec, proc in procs:
                        if proc.poll() is None:
                            _log(f"{spec.name} did not stop in {grace_seconds:g} s; SIGKILL")
                            _signal(proc, signal.SIGKILL, group=True)
                    killed = True
                timeout = max(0.05, min(timeout, left)) if not killed else 0.1
            with contextlib.suppress(InterruptedError):
                select.select([read_fd], [], [], timeout)
            with contextlib.suppress(BlockingIOError):
                while os.read(read_fd, 512):
                    pass
        # Leftover grandchildren of a child's process group (e.g. gunicorn workers whose
        # master was SIGKILLed) must not outlive the pod.
        for _spec, proc in procs:
            _signal(proc, signal.SIGKILL, group=True)
        if first is not None:
            return _exit_code(first[1])
        forwarded = -(stop_signal or signal.SIGTERM)
        for _spec, proc in procs:
            if proc.returncode not in (0, forwarded):
                return _exit_code(proc.returncode)
        return 0
    except BaseException:
        for _spec, proc in procs:
            _signal(proc, signal.SIGKILL, group=True)
            proc.wait()
        raise
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(read_fd)
        os.close(write_fd)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.lab.pod",
        description="Run one pod of the lab's workloads (its app + its sidecar) and supervise both.",
    )
    parser.add_argument("pod", help="pod name from the lab's workloads")
    parser.add_argument("--mesh-dir", default=os.environ.get("MESH_DIR", ".mesh"))
    parser.add_argument(
        "--workloads", nargs="+", metavar="FILE",
        help="the lab's manifest files (default: $MESHLAB_WORKLOADS, else the course profile)",
    )  # fmt: skip
    parser.add_argument("--service-port", type=int, help="default: the pod's container port")
    parser.add_argument("--app-port", type=int, help="default: the service port + 1")
    parser.add_argument("--outbound-port", type=int, default=OUTBOUND_PORT)
    parser.add_argument("--admin-port", type=int, default=ADMIN_PORT)
    parser.add_argument("--bind-address", default="0.0.0.0")
    parser.add_argument(
        "--advertise-address",
        help="address other pods use (default: 127.0.0.1 for a loopback bind, "
        "else this host's name resolved)",
    )
    parser.add_argument(
        "--secrets-dir", default=os.environ.get("MESH_SECRETS_DIR") or None,
        help="pod-private directory for the agent's key and certificate (env "
        "MESH_SECRETS_DIR; none: no agent, the proxy has no identity)",
    )  # fmt: skip
    parser.add_argument(
        "--gateway-port-map", default="",
        help="a gateway pod's CONTAINER:HOST port map (process mode)",
    )  # fmt: skip
    parser.add_argument("--grace-seconds", type=float, default=DEFAULT_GRACE_SECONDS)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the two command lines and exit"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from mesh.lab.workloads import WorkloadError, lab_entries, lab_workloads, topology_from_env

    args = parse_args(argv)
    try:
        topology = (
            lab_workloads(lab_entries(files=args.workloads)).topology
            if args.workloads
            else topology_from_env()
        )
        pod = find_pod(args.pod, topology.pods)
    except WorkloadError as exc:
        _log(str(exc))
        return 2
    except KeyError as exc:
        _log(str(exc.args[0]))
        return 2
    service = args.service_port or pod.port
    ports = PodPorts(service, args.app_port or service + 1, args.outbound_port, args.admin_port)
    advertise = args.advertise_address or default_advertise_address(args.bind_address)
    children: list[ChildSpec]
    if pod.proxy == "gateway":
        children = [
            build_gateway(
                pod,
                mesh_dir=args.mesh_dir,
                admin_port=args.admin_port,
                bind_address=args.bind_address,
                advertise_address=advertise,
                port_map=args.gateway_port_map,
            )
        ]
    else:
        children = list(
            build_children(
                pod,
                mesh_dir=args.mesh_dir,
                ports=ports,
                bind_address=args.bind_address,
                advertise_address=advertise,
            )
        )
    if args.secrets_dir and pod.proxy != "none":
        children = [with_secrets(c, args.secrets_dir) if c.name != "app" else c for c in children]
        children.append(build_agent(pod, mesh_dir=args.mesh_dir, secrets_dir=args.secrets_dir))
    if args.dry_run:
        for child in children:
            print(f"{child.name}: {' '.join(child.argv)}")
        return 0
    _log(f"pod {pod.name} ({pod.service} {pod.version}), advertised as {advertise}:{ports.service}")
    return supervise(children, grace_seconds=args.grace_seconds)


if __name__ == "__main__":
    sys.exit(main())
