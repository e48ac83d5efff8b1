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
import random
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from mesh.config import ConfigError
from mesh.meshdir import MeshDir, ProxyStatus, RegistryRecord, write_json
from mesh.routing import ProxyIdentity, compile_snapshot
from mesh.sidecar import admin, memory_budget
from mesh.sidecar.files import Writer, remove_quietly
from mesh.sidecar.guard import Guard
from mesh.sidecar.http1.client import Pool
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.server import ConnTracker, Downstream
from mesh.sidecar.inotify import DirWatch, watch_dir
from mesh.sidecar.pipeline import start_inbound, start_routed
from mesh.sidecar.prober import ProbeSpec, ProbeState, run_prober
from mesh.sidecar.runtime import Runtime
from mesh.sidecar.sockets import connection_cap, listening_socket
from mesh.sidecar.telemetry import Telemetry, open_log
from mesh.sidecar.tracing import Tracer, make_tracer, telemetry_enabled
from mesh.snapshot import Snapshot, SnapshotError
from mesh.spansender import SpanSender, collector_from_env
from mesh.telemetry import istio, zipkin

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
    # The pod's container port (what its Service's targetPort names); None: ``inbound_port``
    # (a container; in process mode every pod listens on a loopback port of its own).
    container_port: int | None = None
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
    # The pod's Deployment (Istio's workload name); "": ``<app>-<version>``.
    workload_name: str = ""
    # The pod's private secrets directory (the agent writes the workload certificate there):
    # mTLS. None: no identity, plaintext only, and OpenSSL never loaded.
    secrets_dir: Path | None = None

    @property
    def role(self) -> str:
        return "gateway" if self.gateway else "workload" if self.plain else "sidecar"

    @property
    def service_name(self) -> str:
        return self.service or self.labels.get("app") or self.pod

    @property
    def workload(self) -> str:
        if self.workload_name:
            return self.workload_name
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
        self.telemetry = Telemetry(
            options.pod,
            options.workload,
            open_log(options.access_log),
            peer=istio.Peer.of_pod(options.workload, options.namespace, options.labels),
            service=istio.Service.of(options.service_name, options.namespace),
            principal=istio.principal(options.namespace, options.service_account),
        )
        self.pool = Pool(loop)
        self.runtime = Runtime(
            loop, self.pool, self.telemetry, random.Random(options.seed), app_port=options.app_port
        )
        # An ejection is published at once (meshctl endpoints, the console's graph), not at
        # the next heartbeat: one status write, on the writer's thread.
        self.runtime.ejection_hook = self._ejections_changed
        self._status_due = False
        self.sender: SpanSender | None = None
        self.tracer: Tracer | None = None
        # A pod without a sidecar has no Envoy (the lab's proxy stands in for kube-proxy): no
        # metadata exchange, no istio_* series, no spans; b3 headers pass through untouched.
        if telemetry_enabled() and not options.plain:
            # Metadata exchange: who this proxy's requests come from, for the callee's labels.
            self.runtime.peer_lines = istio.peer_lines(
                options.gateway, options.advertise_address or options.bind_address,
                options.pod, options.namespace, options.workload, options.labels,
                options.service_account,
            )  # fmt: skip
            collector = collector_from_env()
            if collector is not None:
                self.sender = SpanSender(*collector)
            o = options
            self.tracer = make_tracer(
                o.labels.get("app") or o.service_name, o.service_name, o.namespace, o.pod,
                o.labels.get("version"), o.advertise_address or o.bind_address,
                o.inbound_port, o.gateway, self.sender, self.runtime.rng,
            )  # fmt: skip
            self.runtime.tracer = self.telemetry.tracer = self.tracer
        else:
            self.telemetry.enabled = False
        self.runtime.kube_proxy = options.plain
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
        # mTLS and AuthorizationPolicy: loaded only when this proxy has an identity or the
        # mesh has security policies (``mesh.sidecar.guard``).
        self.guard = Guard(options, loop, self.runtime, self.write_status)

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
            workload=o.workload,
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
            ejected=tuple(self.runtime.ejected(time.monotonic(), time.time())),
            **self.guard.status_fields(),
        )
        self.writer.submit(_write, self.status_path, status.to_json())

    def _ejections_changed(self) -> None:
        if not self._status_due:
            self._status_due = True
            self.loop.call_soon(self._write_status_now)

    def _write_status_now(self) -> None:
        self._status_due = False
        self.write_status()

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
        guard = self.guard
        prepared = None
        if guard.wants(snap.resources):
            try:
                prepared = guard.prepare(table)
            except ValueError as exc:  # a policy the proxy cannot enforce: refused whole
                self._refuse(snap.version, f"snapshot {snap.version} refused: {exc}")
                return
        self.runtime.install(table)
        if prepared is not None:
            guard.install(table, prepared, snap.services)
        if self.tracer is not None and not self.options.gateway:
            self._name_server_spans(snap)
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

    def _name_server_spans(self, snap: Snapshot) -> None:
        """SERVER spans named by this pod's Service port, as Istio's inbound decorator does."""
        o = self.options
        for service in snap.services:
            if service.name == o.service_name and service.namespace == o.namespace:
                ports = [(p.number, p.target_port) for p in service.ports]
                name = zipkin.server_operation(
                    service.fqdn, ports, o.container_port or o.inbound_port
                )
                if name is not None and self.tracer is not None:
                    self.tracer.name_inbound(name)
                return

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

    async def _bind(
        self, listener: Listener, host: str, port: int, handler: Any, sock: Any = False
    ) -> None:
        def factory() -> Downstream:
            return Downstream(handler, listener, port)

        if sock is False:
            sock = listening_socket(host, port)
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
                sock = listening_socket(o.bind_address, o.inbound_port)
                if self.guard.bind_inbound(inbound, inbound_handler, sock):
                    self.listeners.append(inbound)  # TLS or plaintext per connection
                else:
                    await self._bind(inbound, o.bind_address, o.inbound_port, inbound_handler, sock)
            if o.outbound_port is not None:
                outbound = Listener(self, "outbound", "source")

                outbound_handler = partial(start_routed, rt, server_port=None, edge=False)
                # The app reaches its sidecar on loopback only (HTTP_PROXY=127.0.0.1:15001).
                out_host = "127.0.0.1" if o.bind_address in ("0.0.0.0", "::") else o.bind_address
                await self._bind(outbound, out_host, o.outbound_port, outbound_handler)
        self.write_status()
        self.write_registry()
        self._tasks.append(self.loop.create_task(self.watch()))
        for coro in self.guard.tasks():
            self._tasks.append(self.loop.create_task(coro))
        self._tasks.append(self.loop.create_task(self._heartbeat()))
        self._tasks.append(self.loop.create_task(self._housekeeping()))
        if self.sender is not None:
            self._tasks.append(self.sender.start())
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
        self.guard.close()
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
        if self.sender is not None:
            await self.sender.close(timeout=0.5)
        self.telemetry.flush_log(self.writer)
        self.writer.close()
        remove_quietly(self.registry_path)  # again: a heartbeat may have been queued

    # --- admin ---------------------------------------------------------------------------

    def handle_admin(self, ex: Exchange) -> None:
        admin.handle(self, ex)


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        # Rewritten every heartbeat: atomic for readers, no fsync (nothing is lost by a crash).
        write_json(path, data, durable=False)
    except OSError as exc:
        print(f"sidecar: cannot write {path}: {exc}", file=sys.stderr)
