"""The whole lab as local processes (``meshlab up --local``): manager, every pod, the gateway.

Primitives:

- ``LocalLab``: a context manager that starts the manager, one ``python -m mesh.lab.pod``
  supervisor per pod of the lab's workloads (Kubernetes manifests: a profile's, default
  ``course``, or the files given; each pod on its own free loopback ports), the ingress
  gateway of ``workloads/istio-system.yaml``, Prometheus (when a ``prometheus`` binary is on
  PATH) and the console (``mesh.lab.prometheus.ObservabilityPlan``), applies the profile's
  baseline, and waits until every pod is ready and every proxy runs the published version.
  ``stop()`` leaves no process behind. It writes ``$MESH_DIR/lab.json`` (each pod's
  namespace and ports) for ``meshlab exec``.
- The lab directory (``<mesh dir>.lab``, 0700, never under $MESH_DIR, which every pod reads):
  ``ca/``, the manager's CA (``--ca-dir``), and ``pods/<pod>/secrets``, each pod's private
  secrets directory (the agent's key and certificate; Kubernetes' in-pod volume).
- ``Child`` (``mesh.lab.processes``, imported here for the callers): one supervised process
  in its own process group, logging to ``$MESH_DIR/logs/<name>.log``; stopped with SIGTERM to
  its group, SIGKILL after a grace, then any descendant that outlived its parent is killed.
- ``free_ports(n)``: distinct loopback ports the kernel says are free right now.

The lab is also the programmatic API of the integration tests and benchmarks: ``apply(path)``,
``set_ready(pod, bool)``, ``kill_manager()`` / ``start_manager()``, ``gateway_url``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mesh.lab.dispatch import LAB_FILE
from mesh.lab.pod import PodPorts
from mesh.lab.processes import DEFAULT_GRACE as DEFAULT_GRACE
from mesh.lab.processes import REPO_ROOT as REPO_ROOT
from mesh.lab.processes import Child as Child
from mesh.lab.processes import descendants as descendants
from mesh.lab.processes import processes_mentioning as processes_mentioning
from mesh.lab.processes import stop_children as stop_children
from mesh.lab.prometheus import INSTALL_HINT, ObservabilityPlan, find_binary
from mesh.lab.workloads import DEFAULT_PROFILE, Entry, entries_env, lab_workloads, load_profile
from mesh.manager.observe import MeshState, ProxyRow
from mesh.manager.service import single_instance
from mesh.meshdir import NOT_A_PROXY, MeshDir, list_files
from mesh.topology import Pod

BASELINE = REPO_ROOT / "scenarios" / "reset.yaml"
GATEWAY_PORT = 8080  # the gateway's own HTTP port (its Service maps 80 to it)
# The baseline argument's default: the profile's own (the course's reset.yaml, none for istio).
PROFILE_BASELINE = Path("<profile>")
HOSTS = ("bookinfo.local", "test.bookinfo.local")


# Where the local lab's processes listen: below Linux's default ephemeral range (32768-60999),
# so no outgoing connection's source port can take a port the lab chose (see free_ports).
LAB_PORT_RANGE = (20000, 32768)


class LabError(RuntimeError):
    """The lab could not start (or an operation on it failed); the message says why."""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` right now, below the kernel's ephemeral range.

    Why not ``bind(0)``: the kernel hands out ports from the ephemeral range, the same range it
    picks the source port of every outgoing connection from. Between choosing a port and the
    child binding it, any connection the lab (or anything on the machine) opens can take it
    as its source port: the child then dies with EADDRINUSE. Ports below the range are never
    used as source ports; a random start keeps two labs starting at once apart.
    """
    low, high = LAB_PORT_RANGE
    start = random.randrange(low, high)
    chosen: list[int] = []
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        if port_free(port, host):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise LabError(f"fewer than {count} free ports in {low}-{high - 1} on {host}")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class PodPlan:
    pod: Pod
    ports: PodPorts
    env: dict[str, str] = field(default_factory=dict)


class LocalLab:
    """The lab as local processes. ``with LocalLab(...) as lab: ...`` starts and stops it."""

    def __init__(
        self,
        mesh_dir: str | Path | None = None,
        *,
        gateway_port: int = GATEWAY_PORT,
        profile: str | None = None,
        workloads: Sequence[str | Path] = (),
        pod_env: Mapping[str, Mapping[str, str]] | None = None,
        baseline: Path | None = PROFILE_BASELINE,
        python: str = sys.executable,
        grace: float = DEFAULT_GRACE,
        out: IO[str] | None = None,
        manager_args: Sequence[str] = (),
        console_port: int | None = None,
        prometheus_port: int | None = None,
        observe: bool = True,
        lab_dir: str | Path | None = None,
    ) -> None:
        """``profile`` (default ``course``) or ``workloads`` (exactly these manifest files,
        each ``FILE`` or ``FILE=NAMESPACE``) choose the pods; raises ``WorkloadError`` with
        every problem (file:line) before anything starts."""
        from mesh.lab.workloads import lab_entries

        self.mesh = MeshDir(Path(mesh_dir or ".mesh").resolve())
        root = self.mesh.root
        self.lab_dir = Path(lab_dir).resolve() if lab_dir else root.with_name(root.name + ".lab")
        if self.lab_dir.is_relative_to(root):
            raise LabError(f"the lab directory {self.lab_dir} must not be inside {root}")
        self.gateway_port = gateway_port
        self.profile = None if workloads else (profile or DEFAULT_PROFILE)
        self.entries: list[Entry] = lab_entries(self.profile, workloads)
        loaded = lab_workloads(self.entries)
        self.workloads = loaded
        # What this process validates applies against: the manager serves the same workloads
        # (MESHLAB_WORKLOADS in its environment).
        self.topology = loaded.topology
        if baseline == PROFILE_BASELINE:
            baseline = load_profile(self.profile).baseline if self.profile else None
        self.baseline = baseline
        pods: Sequence[Pod] = self.topology.app_pods
        if not self.topology.gateway_pods:
            raise LabError("the workloads have no ingress gateway (workloads/istio-system.yaml)")
        self.gateway: Pod = self.topology.gateway_pods[0]
        self.python = python
        self.grace = grace
        self.out = out if out is not None else sys.stderr
        self.manager_args = list(manager_args)
        ports = free_ports(4 * len(pods) + 1)
        self.plans: dict[str, PodPlan] = {}
        for i, pod in enumerate(pods):
            p = ports[4 * i : 4 * i + 4]
            self.plans[pod.name] = PodPlan(
                pod, PodPorts(p[0], p[1], p[2], p[3]), dict((pod_env or {}).get(pod.name, {}))
            )
        self.gateway_admin_port = ports[-1]
        # Console and Prometheus: given ports (meshlab up: 20001, 9090) or free ones (tests).
        spare = free_ports(2)
        self.observability = (
            ObservabilityPlan(
                self.mesh.root,
                console_port or spare[0],
                prometheus_port or spare[1],
                find_binary(),
            )
            if observe
            else None
        )
        self.manager: Child | None = None
        self.children: dict[str, Child] = {}
        self._restarted: dict[str, float] = {}

    # -- addresses ---------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def expected_proxies(self) -> list[str]:
        return [*self.plans, self.gateway.name]

    @property
    def ca_dir(self) -> Path:
        return self.lab_dir / "ca"

    def secrets_dir(self, pod: str) -> Path:
        """The pod's private secrets directory (``MESH_SECRETS_DIR`` of its agent and proxy)."""
        return self.lab_dir / "pods" / pod / "secrets"

    def app_url(self, pod: str) -> str:
        return f"http://127.0.0.1:{self.plans[pod].ports.app}"

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _say(self, message: str) -> None:
        print(f"meshlab: {message}", file=self.out, flush=True)

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["MESH_DIR"] = str(self.mesh.root)
        env["PYTHONUNBUFFERED"] = "1"
        env["MESHLAB_WORKLOADS"] = entries_env(self.entries)
        # The app must reach its sidecar and nothing else through a proxy from the host.
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            env.pop(name, None)
        if self.observability is not None:
            env["ZIPKIN_ADDRESS"] = self.observability.collector_address
        env.update(extra or {})
        return env

    def _child(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        return Child(name, argv, self._env(env), self.mesh.logs / f"{name}.log")

    def _prepare_dir(self) -> None:
        self.mesh.create()
        try:
            with single_instance(self.mesh):
                pass
        except RuntimeError:
            raise LabError(
                f"a manager is already running on {self.mesh.root} (another lab?); "
                "stop it or choose another --mesh-dir"
            ) from None
        self.mesh.logs.mkdir(exist_ok=True)
        self.lab_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.lab_dir, 0o700)
        # A restarted pod makes a new key (the CA's root in ca/ stays, as istiod's secret).
        shutil.rmtree(self.lab_dir / "pods", ignore_errors=True)
        # A previous run's records and proxy statuses would read as dead pods.
        for path in list_files(self.mesh.registry, (".json",)):
            path.unlink(missing_ok=True)
        for path in list_files(self.mesh.status, (".json",)):
            if path.name not in NOT_A_PROXY:
                path.unlink(missing_ok=True)

    def start_manager(self) -> None:
        argv = [self.python, "-m", "mesh.manager", "--mesh-dir", str(self.mesh.root)]
        if not {"--ca-dir", "--cacerts"} & set(self.manager_args):
            argv += ["--ca-dir", str(self.ca_dir)]
        self.manager = self._child("manager", [*argv, *self.manager_args])
        self.manager.start()

    def kill_manager(self, signum: int = signal.SIGKILL) -> None:
        if self.manager is not None:
            self.manager.signal(signum)
            if self.manager.proc is not None:
                self.manager.proc.wait(timeout=10)
            self.manager.close()

    def _pod_child(self, plan: PodPlan) -> Child:
        ports = plan.ports
        argv = [
            self.python, "-m", "mesh.lab.pod", plan.pod.name,
            "--mesh-dir", str(self.mesh.root),
            "--service-port", str(ports.service), "--app-port", str(ports.app),
            "--outbound-port", str(ports.outbound), "--admin-port", str(ports.admin),
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--grace-seconds", str(max(1.0, self.grace - 2)),
        ]  # fmt: skip
        if plan.pod.proxy != "none":
            argv += ["--secrets-dir", str(self.secrets_dir(plan.pod.name))]
        return self._child(plan.pod.name, argv, plan.env)

    def _gateway_child(self) -> Child:
        gateway = self.gateway
        # The gateway pod's supervisor runs its proxy (mesh.lab.pod.build_gateway) and its
        # agent. On loopback unless LAB_BIND shares the lab (as compose's published ports;
        # the gateway's admin port goes with it); every pod stays on loopback.
        argv = [
            self.python, "-m", "mesh.lab.pod", gateway.name,
            "--mesh-dir", str(self.mesh.root),
            "--admin-port", str(self.gateway_admin_port),
            "--bind-address", os.environ.get("LAB_BIND") or "127.0.0.1",
            "--advertise-address", "127.0.0.1",
            "--gateway-port-map", f"{GATEWAY_PORT}:{self.gateway_port}",
            "--secrets-dir", str(self.secrets_dir(gateway.name)),
            "--grace-seconds", str(max(1.0, self.grace - 2)),
        ]  # fmt: skip
        return self._child("gateway", argv)

    def _start_observers(self) -> None:
        plan = self.observability
        if plan is None:
            return
        if plan.prometheus_binary is None:
            self._say(INSTALL_HINT)
        plan.prepare()
        for name, argv in plan.processes(self.python):
            child = self._child(name, argv)
            child.start()
            self.children[name] = child

    def start(self, timeout: float = 180.0) -> None:
        """Start everything, apply the baseline, wait until ready and synced (or raise)."""
        wanted = [(self.gateway_port, "--gateway-port")]
        if self.observability is not None:
            wanted.append((self.observability.console_port, "--console-port"))
            if self.observability.prometheus_binary is not None:
                wanted.append((self.observability.prometheus_port, "--prometheus-port"))
        for port, option in wanted:
            if not port_free(port):
                raise LabError(
                    f"port {port} on 127.0.0.1 is in use (another lab? a system Prometheus?); "
                    f"choose one with {option}"
                )
        self._prepare_dir()
        try:
            self.start_manager()
            self._start_observers()
            for plan in self.plans.values():
                child = self._pod_child(plan)
                child.start()
                self.children[plan.pod.name] = child
            gateway = self._gateway_child()
            gateway.start()
            self.children[self.gateway.name] = gateway
            self._write_lab_file()
            self._say(
                f"started the manager, {len(self.plans)} pods and the gateway; logs in "
                f"{self.mesh.logs}"
            )
            deadline = time.monotonic() + timeout
            self.wait_ready(deadline)
            if self.baseline is not None:
                self._say(f"applying the baseline {self.baseline.name}")
                code, output = self.apply(self.baseline, prune=True, timeout=30.0)
                if code != 0:
                    raise LabError(f"the baseline did not apply:\n{output}")
            self.wait_synced(deadline)
        except BaseException:
            self.stop()
            raise

    def _write_lab_file(self) -> None:
        """What ``meshlab exec`` and ``meshlab status`` need to know about this lab."""
        import json

        pods = {
            name: {
                "namespace": plan.pod.namespace,
                "sidecar": plan.pod.proxy == "sidecar",
                "service_port": plan.ports.service,
                "app_port": plan.ports.app,
                "outbound_port": plan.ports.outbound,
                "admin_port": plan.ports.admin,
                **(
                    {"secrets_dir": str(self.secrets_dir(name))} if plan.pod.proxy != "none" else {}
                ),
            }
            for name, plan in self.plans.items()
        }
        body = {
            "pid": os.getpid(),
            "profile": self.profile,
            "workloads": [entry.spec() for entry in self.entries],
            "gateway": {
                "pod": self.gateway.name,
                "port": self.gateway_port,
                "secrets_dir": str(self.secrets_dir(self.gateway.name)),
            },
            "lab_dir": str(self.lab_dir),
            "pods": pods,
        }
        (self.mesh.root / LAB_FILE).write_text(json.dumps(body, indent=1) + "\n")

    def _check_alive(self) -> None:
        everyone = [*self.children.values(), *([self.manager] if self.manager else [])]
        for child in everyone:
            if child.proc is not None and child.proc.poll() is not None:
                raise LabError(
                    f"{child.name} exited with code {child.proc.returncode}; "
                    f"last lines of {child.log_path}:\n{child.tail()}"
                )

    def rows(self) -> dict[str, ProxyRow]:
        state = MeshState.read(self.mesh)
        return {row.pod: row for row in state.rows(time.time())}

    def wait_ready(self, deadline: float) -> None:
        """Until every pod and the gateway registered as ready."""
        while True:
            self._check_alive()
            state = MeshState.read(self.mesh, with_snapshot=False)
            now = time.time()
            ready = {r.pod for r in state.records if r.ready and r.expires_at > now}
            missing = [p for p in self.expected_proxies if p not in ready]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise LabError(f"not ready in time: {', '.join(missing)}{self._tails(missing)}")
            time.sleep(0.2)

    def wait_synced(self, deadline: float) -> None:
        """Until every expected proxy is ready and SYNCED with the published version."""
        while True:
            self._check_alive()
            rows = self.rows()
            pending = [
                f"{p} ({rows[p].status}, {'ready' if rows[p].ready else 'not ready'})"
                if p in rows
                else f"{p} (not registered)"
                for p in self.expected_proxies
                if p not in rows or not rows[p].ok
            ]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise LabError(f"not synced in time: {', '.join(pending)}")
            time.sleep(0.1)

    def _tails(self, names: Sequence[str]) -> str:
        parts = []
        for name in names[:3]:
            child = self.children.get(name)
            if child is not None:
                parts.append(f"\n--- {child.log_path} ---\n{child.tail()}")
        return "".join(parts)

    def stop(self) -> None:
        everyone = [*self.children.values(), *([self.manager] if self.manager else [])]
        if not everyone:
            return
        stop_children(everyone, self.grace)
        self.children.clear()
        self.manager = None
        # The pods are gone: so are their private keys (Kubernetes deletes a pod's volumes).
        shutil.rmtree(self.lab_dir / "pods", ignore_errors=True)

    def leftovers(self) -> list[int]:
        """Processes still running for this lab's mesh directory (empty after ``stop()``)."""
        return processes_mentioning(str(self.mesh.root))

    def restart_crashed(self, min_interval: float = 5.0) -> Iterator[str]:
        """Restart children that exited (Kubernetes' restartPolicy: Always), with a back-off;
        yield one message per restart (for ``meshlab up``)."""
        now = time.monotonic()
        everyone = [*self.children.values(), *([self.manager] if self.manager else [])]
        for child in everyone:
            if child.proc is None or child.proc.poll() is None:
                continue
            last = self._restarted.get(child.name, -min_interval)
            if now - last < min_interval:
                continue
            code = child.proc.returncode
            child.reap_leftovers()
            child.close()
            child.start()
            self._restarted[child.name] = now
            yield f"{child.name} exited with code {code}; restarted (log: {child.log_path})"

    # -- operations --------------------------------------------------------------------------

    def apply(
        self, *paths: str | Path, wait: bool = True, timeout: float = 30.0, prune: bool = False
    ) -> tuple[int, str]:
        """``meshctl apply -f PATH... [--wait]`` in-process: (exit code, everything it would
        print)."""
        from mesh.manager.apply import apply_resources, wait_synced
        from mesh.manager.yaml_files import load_paths

        result = load_paths([Path(p) for p in paths])
        outcome = apply_resources(
            self.mesh, result.resources, result.issues, self.topology, prune=prune
        )
        text = outcome.text
        if outcome.code == 0 and wait:
            synced = wait_synced(self.mesh, outcome.expected, outcome.written_at, timeout)
            return synced.code, text + synced.text
        return outcome.code, text

    def set_ready(self, pod: str, ready: bool) -> dict[str, Any]:
        """Flip a pod's app readiness (``POST /health/toggle?ready=...`` on the app port)."""
        import requests

        response = requests.post(
            f"{self.app_url(pod)}/health/toggle",
            params={"ready": "true" if ready else "false"},
            timeout=5,
            proxies={"http": "", "https": ""},
        )
        return dict(response.json())
