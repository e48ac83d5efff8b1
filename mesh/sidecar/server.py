"""The sidecar process: listeners, config watcher, readiness, registry heartbeat, admin.

Primitives:

- ``Options``: the command line (``python -m mesh.sidecar ...``), one frozen value.
- ``Listener``: a bound port with its handler and its telemetry reporter
  (inbound = ``destination``, outbound and gateway = ``source``).
- ``Sidecar``: owns the event loop's tasks:

  * **watcher**: inotify on ``$MESH_DIR/snapshot/`` (``inotify.py``) plus a stat poll every
    second as a safety net (bind mounts drop inotify events); each change is read, parsed
    and compiled right here, off the request path, then installed with one assignment. A
    snapshot that fails to parse or compile is refused: the last good table stays and
    ``status/<pod>.json`` says why.
  * **prober**: Kubernetes readiness semantics (``prober.py``).
  * **heartbeat**: ``registry/<pod>.json`` and ``status/<pod>.json`` every ``--heartbeat``
    seconds, and at once when readiness or config changes.
  * **housekeeping**: outlier sweeps and access-log hand-over (4 x a second), connection
    timeouts (once a second).

A pod is *ready* when its app passes its readiness probe (no probe: at once) and a snapshot
has been applied; a gateway when a snapshot has been applied.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import signal
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from mesh.config import ConfigError
from mesh.meshdir import MeshDir, ProxyStatus, RegistryRecord, write_json
from mesh.routing import ProxyIdentity, compile_snapshot
from mesh.sidecar import memory_budget, tap
from mesh.sidecar.files import Writer, remove_quietly
from mesh.sidecar.http1.client import Pool
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.server import ConnTracker, Downstream
from mesh.sidecar.inotify import DirWatch, watch_dir
from mesh.sidecar.pipeline import start_inbound, start_routed
from mesh.sidecar.prober import ProbeSpec, ProbeState, run_prober
from mesh.sidecar.runtime import Runtime
from mesh.sidecar.telemetry import Telemetry, open_log
from mesh.snapshot import Snapshot, SnapshotError

POLL_INTERVAL = 1.0
HOUSEKEEPING_INTERVAL = 0.25


@dataclass(frozen=True)
class Options:
    pod: str
    mesh_dir: Path
    labels: dict[str, str] = field(default_factory=dict)
    service: str | None = None
    gateway: bool = False
    namespace: str = "default"
    service_account: str = "default"
    # No sidecar in this pod: only register it, probe its app and give the app Kubernetes'
    # plain Service routing (kube-proxy's part), no VirtualService or DestinationRule.
    plain: bool = False
    inbound_port: int | None = None
    app_port: int | None = None
    outbound_port: int | None = None
    admin_port: int = 15000
    bind_address: str = "0.0.0.0"
    advertise_address: str | None = None
    probe: ProbeSpec | None = None
    registry_ttl: float = 10.0
    heartbeat: float = 2.0
    gateway_port_map: dict[int, int] = field(default_factory=dict)
    header_timeout: int = 10
    idle_timeout: int = 300
    # Concurrent downstream connections per listener; None: from the open-file limit.
    max_connections: int | None = None
    access_log: str = "-"
    seed: int | None = None

    @property
    def role(self) -> str:
        return "gateway" if self.gateway else "workload" if self.plain else "sidecar"

    @property
    def service_name(self) -> str:
        return self.service or self.labels.get("app") or self.pod

    @property
    def workload(self) -> str:
        app = self.labels.get("app", self.service_name)
        version = self.labels.get("version")
        return f"{app}-{version}" if version else app


class Listener(ConnTracker):
    """One bound port: its connections and how their exchanges are reported."""

    def __init__(self, sidecar: Sidecar, name: str, reporter: str | None) -> None:
        super().__init__(sidecar.loop, sidecar.max_connections)
        self.sidecar = sidecar
        self.name = name
        self.reporter = reporter
        self.server: asyncio.Server | None = None
        if reporter is not None:
            # Straight to the recorder (a C-level partial, no Python frame in between).
            self.on_exchange_done = partial(sidecar.telemetry.record, reporter=reporter)  # type: ignore[method-assign]

    def on_exchange_done(self, ex: Exchange) -> None:
        if self.reporter is not None:
            self.sidecar.telemetry.record(ex, self.reporter)

    def on_bad_request(self, ex: Exchange, status: int) -> None:
        self.sidecar.telemetry.bad_requests += 1

    def on_handler_error(self, exc: Exception) -> None:
        self.sidecar.telemetry.handler_errors += 1
        import traceback

        traceback.print_exception(exc, file=sys.stderr)


class Sidecar:
    """One proxy process (sidecar or gateway role)."""

    def __init__(self, options: Options, loop: asyncio.AbstractEventLoop) -> None:
        self.options = options
        self.loop = loop
        self.max_connections = options.max_connections or connection_cap()
        self.identity = ProxyIdentity(
            options.pod, dict(options.labels), options.gateway, options.namespace
        )
        self.telemetry = Telemetry(options.pod, options.workload, open_log(options.access_log))
        self.pool = Pool(loop)
        labels = options.labels
        pod_labels = (
            options.workload,
            options.service_name,
            labels.get("version", "unknown"),
        )
        self.runtime = Runtime(
            loop,
            self.pool,
            self.telemetry,
            random.Random(options.seed),
            app_port=options.app_port,
            pod_labels=pod_labels,
        )
        self.listeners: list[Listener] = []
        self.gateway_listeners: dict[int, Listener] = {}
        self.snapshot: Snapshot | None = None
        self.applied_at: float | None = None
        self.error: str | None = None
        self.error_version: int | None = None
        self._last_sig: tuple[int, int, int] | None = None
        self.probe_state = ProbeState(options.probe) if options.probe else None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self._was_ready: bool | None = None
        self._listeners_version: int | None = None
        self._watch: DirWatch | None = None
        self.listener_error: str | None = None
        self.writer = Writer()
        self.telemetry.writer = self.writer
        self.mesh = MeshDir(options.mesh_dir)
        self.registry_path = self.mesh.registry_file(options.pod)
        self.status_path = self.mesh.status_file(options.pod)

    # --- readiness ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        if self.snapshot is None:
            return False
        if self.options.gateway:
            # Ready once the listeners of the applied snapshot are bound.
            return self._listeners_version == self.snapshot.version
        if self.probe_state is not None:
            return self.probe_state.ready
        return True

    def readiness_changed(self) -> None:
        ready = self.ready
        if ready != self._was_ready:
            self._was_ready = ready
            self.write_registry()
            self.write_status()

    # --- shared files -------------------------------------------------------------------

    def write_registry(self) -> None:
        o = self.options
        port = o.inbound_port
        if o.gateway and port is None and self.gateway_listeners:
            port = min(self.gateway_listeners)
        if o.plain and port is None:
            port = o.app_port  # no sidecar: the app itself is the endpoint
        record = RegistryRecord(
            pod=o.pod,
            service=o.service_name,
            labels=dict(o.labels),
            address=o.advertise_address or o.bind_address,
            port=port or 0,
            ready=self.ready,
            heartbeat=time.time(),
            ttl=o.registry_ttl,
            admin_port=o.admin_port,
            admin_address=o.advertise_address or o.bind_address,
            role=o.role,
            namespace=o.namespace,
            service_account=o.service_account,
        )
        self.writer.submit(_write, self.registry_path, record.to_json())

    def write_status(self) -> None:
        snap = self.snapshot
        status = ProxyStatus(
            pod=self.options.pod,
            role=self.options.role,
            version=snap.version if snap else None,
            hash=snap.hash if snap else None,
            applied_at=self.applied_at,
            ready=self.ready,
            error=self.error,
            error_version=self.error_version,
            heartbeat=time.time(),
            probe_error=self.probe_state.last_error if self.probe_state is not None else None,
            listener_error=self.listener_error,
        )
        self.writer.submit(_write, self.status_path, status.to_json())

    # --- config ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Apply the snapshot file if it changed; refuse it (keeping the last good one) if it
        cannot be parsed or compiled."""
        path = self.mesh.snapshot_file
        try:
            st = path.stat()
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
            if sig == self._last_sig:
                return
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._refuse(None, f"cannot read {path}: {exc}")
            return
        self._last_sig = sig
        try:
            snap = Snapshot.from_json(data)
        except SnapshotError as exc:
            self._refuse(None, f"snapshot refused: {exc}")
            return
        current = self.snapshot
        if current is not None and snap.version == current.version and snap.hash == current.hash:
            return
        try:
            # Without a sidecar the pod's traffic meets no Istio config: plain Services only.
            table = compile_snapshot(
                replace(snap, resources=()) if self.options.plain else snap, self.identity
            )
        except ConfigError as exc:
            self._refuse(snap.version, f"snapshot {snap.version} refused: {exc}")
            return
        except Exception as exc:  # an engine bug must not take the data plane down
            self._refuse(snap.version, f"snapshot {snap.version} failed to compile: {exc!r}")
            return
        self.runtime.install(table)
        self.snapshot = snap
        self.applied_at = time.time()
        self.error = None
        self.error_version = None
        self.telemetry.config_version = snap.version
        self.telemetry.config_applied += 1
        if self.options.gateway:
            self.loop.create_task(self.sync_gateway_listeners(table))
        self.write_status()
        self.readiness_changed()
        # Off the request path, once per config: collect what the compile left, move every
        # surviving object (modules, the table) out of the collector's sight so that the
        # full collections the request path triggers stay short, and hand freed heap pages
        # back to the OS (memory budget).
        self.loop.call_later(0.5, memory_budget.settle)

    def _refuse(self, version: int | None, message: str) -> None:
        self.error = message
        self.error_version = version
        self.telemetry.config_refused += 1
        print(f"sidecar {self.options.pod}: {message}", file=sys.stderr)
        self.write_status()

    async def watch(self) -> None:
        """inotify on the snapshot directory (the directory: an atomic rename replaces the
        file's inode), plus a stat poll every second as a safety net."""
        self.mesh.snapshot_dir.mkdir(parents=True, exist_ok=True)
        self.reload()
        self._watch = watch_dir(self.loop, self.mesh.snapshot_dir, self.reload)
        if self._watch is None:
            print(f"sidecar {self.options.pod}: inotify unavailable; polling", file=sys.stderr)
        await self._poll()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            self.reload()
            table = self.runtime.table
            if self.options.gateway and table is not None and self.listener_error:
                await self.sync_gateway_listeners(table)

    # --- listeners ---------------------------------------------------------------------

    async def _bind(self, listener: Listener, host: str, port: int, handler: Any) -> None:
        def factory() -> Downstream:
            return Downstream(handler, listener, port)

        sock = _listening_socket(host, port)
        if sock is None:  # a host name: let the loop resolve it
            listener.server = await self.loop.create_server(
                factory, host, port, reuse_address=True, backlog=1024
            )
        else:
            listener.server = await self.loop.create_server(factory, sock=sock, backlog=1024)
        self.listeners.append(listener)

    async def sync_gateway_listeners(self, table: Any) -> None:
        """Open a listener per Gateway server port that selects this proxy; close the rest."""
        o = self.options
        rt = self.runtime
        wanted = set(table.gateway_ports)
        for port in list(self.gateway_listeners):
            if port not in wanted:
                listener = self.gateway_listeners.pop(port)
                if listener.server is not None:
                    listener.server.close()
                if listener in self.listeners:
                    self.listeners.remove(listener)
        for port in sorted(wanted - set(self.gateway_listeners)):
            listen = o.gateway_port_map.get(port, port)
            listener = Listener(self, f"gateway:{port}", "source")

            def handler(ex: Exchange, _port: int = port) -> None:
                start_routed(rt, ex, _port, True)

            try:
                await self._bind(listener, o.bind_address, listen, handler)
            except OSError as exc:
                message = f"cannot bind {o.bind_address}:{listen} for server port {port}: {exc}"
                if message != self.listener_error:
                    print(f"gateway {o.pod}: {message}", file=sys.stderr)
                self.listener_error = message
                continue
            self.gateway_listeners[port] = listener
        if wanted <= set(self.gateway_listeners):
            # Every server port is bound: ready (a port that could not be bound is retried
            # on each poll, and the gateway stays unready meanwhile).
            self.listener_error = None
            self._listeners_version = table.version
        else:
            self._listeners_version = None
        self.write_registry()
        self.write_status()
        self.readiness_changed()

    async def start(self) -> None:
        o = self.options
        rt = self.runtime
        admin = Listener(self, "admin", None)
        await self._bind(admin, o.bind_address, o.admin_port, self.handle_admin)
        if not o.gateway:
            if o.inbound_port is not None:
                inbound = Listener(self, "inbound", "destination")

                # Handlers are C-level partials: no Python frame of ours per request.
                inbound_handler = partial(start_inbound, rt)
                await self._bind(inbound, o.bind_address, o.inbound_port, inbound_handler)
            if o.outbound_port is not None:
                outbound = Listener(self, "outbound", "source")

                outbound_handler = partial(start_routed, rt, server_port=None, edge=False)
                # The app reaches its sidecar on loopback only (HTTP_PROXY=127.0.0.1:15001).
                out_host = "127.0.0.1" if o.bind_address in ("0.0.0.0", "::") else o.bind_address
                await self._bind(outbound, out_host, o.outbound_port, outbound_handler)
        self.write_status()
        self.write_registry()
        self._tasks.append(self.loop.create_task(self.watch()))
        self._tasks.append(self.loop.create_task(self._heartbeat()))
        self._tasks.append(self.loop.create_task(self._housekeeping()))
        if o.probe is not None and self.probe_state is not None:
            self._tasks.append(
                self.loop.create_task(run_prober(o.probe, self.probe_state, self.readiness_changed))
            )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat)
            self.write_registry()
            self.write_status()

    async def _housekeeping(self) -> None:
        o = self.options
        n = 0
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            self.runtime.sweep(time.monotonic())
            # Small, frequent batches keep the log buffer (and the memory it holds) small.
            self.telemetry.flush_log(self.writer)
            n += 1
            if n % 40 == 0:
                memory_budget.trim()  # every 10 s: freed heap back to the OS (memory budget)
            if n % 4 == 0:
                for listener in self.listeners:
                    for conn in list(listener.conns):
                        conn.tick(o.header_timeout, o.idle_timeout)
                self.pool.tick(o.idle_timeout)

    async def run(self) -> None:
        await self.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.loop.add_signal_handler(sig, self._stopping.set)
            except (NotImplementedError, RuntimeError):
                pass
        await self._stopping.wait()
        await self.stop()

    async def stop(self, grace: float = 1.0) -> None:
        """Leave the registry first (no new traffic is sent here), stop accepting, give
        in-flight exchanges ``grace`` seconds to finish, then close everything."""
        self._stopping.set()
        remove_quietly(self.registry_path)
        for listener in self.listeners:
            if listener.server is not None:
                listener.server.close()
        deadline = self.loop.time() + grace
        while self.loop.time() < deadline and any(
            conn.active is not None for listener in self.listeners for conn in listener.conns
        ):
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        if self._watch is not None:
            self._watch.close()
        self.pool.close_all()
        self.telemetry.flush_log(self.writer)
        self.writer.close()
        remove_quietly(self.registry_path)  # again: a heartbeat may have been queued

    # --- admin ---------------------------------------------------------------------------

    def handle_admin(self, ex: Exchange) -> None:
        path = ex.url.decode("latin-1").split("?", 1)[0]
        now = time.monotonic()
        rt = self.runtime
        if path == "/ready":
            if self.ready:
                ex.reply(200, b"LIVE\n")
            else:
                ex.reply(503, b"NOT READY\n" if self.snapshot else b"PRE_INITIALIZING\n")
        elif path in ("/stats/prometheus", "/stats", "/metrics"):
            extra = []
            extra.append("# TYPE mesh_outlier_ejections_total counter")
            for name, state in sorted(rt.states.items()):
                extra.append(f'mesh_outlier_ejections_total{{cluster="{name}"}} {state.ejections}')
            extra.append("# TYPE mesh_outlier_ejected_hosts gauge")
            for name, state in sorted(rt.states.items()):
                ejected = len(state.cluster.endpoints) - len(state.healthy)
                extra.append(f'mesh_outlier_ejected_hosts{{cluster="{name}"}} {ejected}')
            extra.append("# TYPE mesh_upstream_rq_pending_overflow_total counter")
            for name, load in sorted(rt.loads.items()):
                extra.append(
                    f'mesh_upstream_rq_pending_overflow_total{{cluster="{name}"}} {load.overflows}'
                )
            # Envoy's listener stats: downstream_cx_active, and downstream_cx_overflow for
            # connections refused over the listener's cap.
            extra.append("# TYPE mesh_downstream_cx_active gauge")
            for listener in self.listeners:
                extra.append(
                    f'mesh_downstream_cx_active{{listener="{listener.name}"}} {len(listener.conns)}'
                )
            extra.append("# TYPE mesh_downstream_cx_overflow_total counter")
            for listener in self.listeners:
                extra.append(
                    f'mesh_downstream_cx_overflow_total{{listener="{listener.name}"}} '
                    f"{listener.overflows}"
                )
            extra.append("# TYPE mesh_ready gauge")
            extra.append(f"mesh_ready {1 if self.ready else 0}")
            body = self.telemetry.render(extra).encode()
            ex.reply(200, body, headers=((b"content-type", b"text/plain; version=0.0.4"),))
        elif path == "/config_dump":
            table = rt.table
            snap = self.snapshot
            dump: dict[str, Any] = {
                "pod": self.options.pod,
                "role": self.options.role,
                "version": snap.version if snap else None,
                "hash": snap.hash if snap else None,
                "applied_at": self.applied_at,
                "error": self.error,
                "error_version": self.error_version,
            }
            if table is not None:
                try:
                    dump.update(table.describe())
                except Exception as exc:
                    dump["describe_error"] = repr(exc)
                dump["version"] = snap.version if snap else None
                dump.setdefault(
                    "clusters", {n: s.describe(now) for n, s in sorted(rt.states.items())}
                )
            _json_reply(ex, dump)
        elif path == "/clusters":
            _json_reply(
                ex,
                {
                    "version": self.snapshot.version if self.snapshot else None,
                    "clusters": [s.describe(now) for _, s in sorted(rt.states.items())],
                },
            )
        elif path == "/healthz":
            ex.reply(200, b"ok\n")
        elif path == "/tap":  # the first bytes of new inbound connections (meshctl tap)
            _json_reply(ex, tap.snapshot(tap.since_of(ex.url)))
        else:
            ex.reply(404, b"admin: /ready /stats/prometheus /config_dump /clusters /tap\n")


def _json_reply(ex: Exchange, data: Any) -> None:
    body = json.dumps(data, indent=1, sort_keys=True, default=str).encode()
    ex.reply(200, body, headers=((b"content-type", b"application/json"),))


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        # Rewritten every heartbeat: atomic for readers, no fsync (nothing is lost by a crash).
        write_json(path, data, durable=False)
    except OSError as exc:
        print(f"sidecar: cannot write {path}: {exc}", file=sys.stderr)


# File descriptors kept for everything but downstream connections (pooled upstream
# connections beyond one per downstream, files, the admin listener's clients).
RESERVED_FDS = 256


def raise_fd_limit(ceiling: int = 1 << 20) -> None:
    """Raise this process's open-file soft limit to its hard limit (at most ``ceiling``), as
    servers do at start: the soft default (often 1024) is far below what a proxy needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard if hard != resource.RLIM_INFINITY else ceiling, ceiling)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def connection_cap() -> int:
    """The default cap on concurrent downstream connections per listener: a refusal at the
    cap beats running out of file descriptors. Each downstream connection may hold one
    upstream connection, and a sidecar has two busy listeners (inbound, outbound): a quarter
    of the open-file limit, less a reserve, keeps every accepted connection servable."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(64, (soft - RESERVED_FDS) // 4)


def _listening_socket(host: str, port: int) -> socket.socket | None:
    """A bound, listening socket for an IP literal. Handing the loop a ready socket spares
    uvloop's getaddrinfo, which would start libuv's thread pool (four threads, for nothing)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socket.inet_pton(family, host)
    except OSError:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
