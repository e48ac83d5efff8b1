"""The manager (control plane) loop: watch, debounce, validate, compile, publish, report.

Primitives: ``Manager.evaluate()`` — one synchronous pass: read the registry and ``config/``,
validate with the same loader and analyzer as ``meshctl analyze``, build the next snapshot and
publish it only when its content hash changed; and ``Manager.run(stop)`` — the asyncio shell
that decides *when* to evaluate:

- a watchfiles watch on ``config/`` and ``registry/`` (inotify) pokes one ``Debouncer`` per
  directory; ``config/.applied`` (meshctl's "transaction complete") makes it due at once;
- a poll (every ``poll`` s) compares directory signatures, because Docker Desktop bind mounts
  drop inotify events;
- a timer fires when the next registry record reaches its TTL, so a dead pod drops out even
  though nothing on disk changes;
- a heartbeat rewrites ``status/manager.json`` (compose healthchecks it);
- with a CA (``mesh.manager.ca.CAShell``), ``csr/`` is polled every ``ca_poll`` seconds and
  each new CSR answered in ``certs/``; the CA files are re-read when they change.

Invalid config is never published. The last good *config* stays, but endpoint changes still
flow: a pod turning unready is published with the last good config, so a broken hand-edited
file cannot pin traffic to a dead pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mesh.config.issues import Issue
from mesh.config.normal_form import to_normal
from mesh.manager.ca import CAShell
from mesh.manager.compile import blocking, next_snapshot
from mesh.manager.debounce import Debouncer
from mesh.manager.observers import Observers
from mesh.manager.registry import (
    next_expiry,
    read_registry,
    snapshot_endpoints,
    validation_topology,
)
from mesh.meshdir import (
    APPLIED_MARKER,
    CONFIG_SUFFIXES,
    RECORD_SUFFIX,
    ManagerStatus,
    MeshDir,
    RegistryRecord,
    config_lock,
    list_files,
    publish_snapshot,
    read_manager_status,
    read_snapshot,
    write_json,
)
from mesh.snapshot import Snapshot, SnapshotError
from mesh.topology import Topology

INTERNAL_ERROR = "MSH0100"


def dir_signature(directory: Path, suffixes: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
    """What changes whenever a relevant file is created, replaced, edited or removed."""
    signature = []
    for path in list_files(directory, suffixes):
        try:
            st = path.stat()
        except OSError:
            continue
        signature.append((path.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(signature)


def relevant(path: str, suffixes: tuple[str, ...]) -> bool:
    """Is a watch event about a file the manager reads (not a temp or lock file)?"""
    name = os.path.basename(path)
    return not name.startswith(".") and name.endswith(suffixes)


@dataclass
class ManagerTimings:
    """How the loop waits: a burst of events is evaluated after ``quiet`` seconds without one
    (at most ``max_delay`` after the first), directories are polled every ``poll`` seconds,
    and status/manager.json is rewritten every ``heartbeat`` seconds."""

    quiet: float = 0.1
    max_delay: float = 0.5
    poll: float = 1.0
    heartbeat: float = 1.0
    ca_poll: float = 0.25


@dataclass
class _ConfigCache:
    signature: tuple[Any, ...] | None = None
    resources: list[Any] = field(default_factory=list)
    load_issues: list[Issue] = field(default_factory=list)
    analysis_key: str | None = None
    issues: list[Issue] = field(default_factory=list)


def load_config(files: Sequence[Path]) -> tuple[list[Any], list[Issue]]:
    """Load config files with the loader ``meshctl analyze`` uses."""
    if not files:
        return [], []
    from mesh.manager.yaml_files import load_paths

    result = load_paths(list(files))
    return list(result.resources), list(result.issues)


def analyze_config(resources: Sequence[Any], topology: Topology) -> list[Issue]:
    from mesh.manager.analysis import analyze_all

    return analyze_all(resources, topology)


def internal_issue(exc: BaseException) -> Issue:
    return Issue(
        severity="Error",
        code=INTERNAL_ERROR,
        message=f"the manager could not validate the config: {type(exc).__name__}: {exc}",
    )


def missing_issue(names: str) -> Issue:
    return Issue(
        severity="Error",
        code=INTERNAL_ERROR,
        message=f"{names} disappeared from the mesh directory; the last good snapshot stays",
    )


class Manager:
    def __init__(
        self,
        mesh: MeshDir,
        settings: ManagerTimings | None = None,
        *,
        topology: Topology,
        clock: Callable[[], float] = time.time,
        log: TextIO | None = None,
        ca: CAShell | None = None,
    ) -> None:
        self.mesh = mesh
        self.ca = ca
        self.records: list[RegistryRecord] = []
        self.settings = settings or ManagerTimings()
        self.topology = topology
        self.clock = clock
        self.log = log if log is not None else sys.stderr
        self.cache = _ConfigCache()
        self.published: Snapshot | None = None
        self.last_good: tuple[Any, ...] | None = None
        self.floor_version = 0
        self.rejected: dict[str, Any] | None = None
        self.warnings: list[dict[str, Any]] = []
        self.registry_problems: list[str] = []
        self.endpoint_count = 0
        self.expiry: float | None = None
        self.config_read_at: float | None = None
        self.seen_signature: tuple[Any, ...] | None = None
        self.started_at = clock()
        self.observers = Observers(mesh, self._say)
        self._recover()

    # -- state across restarts -------------------------------------------------------------

    def _recover(self) -> None:
        """Continue from the snapshot on disk and the last status (version continuity)."""
        try:
            self.published = read_snapshot(self.mesh)
            self.last_good = self.published.resources
        except FileNotFoundError:
            self.published = None
        except (OSError, SnapshotError) as exc:
            self._say(f"existing snapshot unreadable ({exc}); it will be replaced")
            self.published = None
        status = read_manager_status(self.mesh) or ManagerStatus()
        self.floor_version = status.version or 0
        if self.published is not None:
            self.floor_version = max(self.floor_version, self.published.version)

    # -- one evaluation --------------------------------------------------------------------

    def evaluate(self) -> Snapshot | None:
        """Read, validate, compile; publish if the content changed. Returns what was published."""
        now = self.clock()
        started = time.perf_counter()
        missing = [d for d in (self.mesh.config, self.mesh.registry) if not d.is_dir()]
        if missing:
            # A vanished directory (a bind mount hiccup, an rm -r) is not "no config" or "no
            # pods": publishing that would drop every route. Keep the last good until it is
            # back (meshctl apply and the sidecars create it again).
            names = ", ".join(f"{d.name}/" for d in missing)
            self._say(f"{names} missing under {self.mesh.root}; nothing published")
            self.rejected = {"at": now, "issues": [missing_issue(names).to_json()]}
            self.write_status()
            return None
        records, problems = read_registry(self.mesh.registry)
        self.records = records
        self.observers.registry_read(records, now)
        self.registry_problems = problems
        self.expiry = next_expiry(records, now)
        endpoints = snapshot_endpoints(records, now)
        self.endpoint_count = len(endpoints)
        issues, resources = self._validated_config(records, now)
        refused = blocking(issues)
        if refused:
            self._reject(refused, issues, now)
            raws = self.last_good
        else:
            if self.rejected is not None:
                self._say("config accepted again")
            self.rejected = None
            # Published in normal form: a sidecar loads it without parsing or validating.
            raws = tuple(to_normal(r) for r in resources)
            self.last_good = raws
        self.warnings = [i.to_json() for i in issues if not i.is_error or i not in refused]
        published = None
        if raws is not None:
            published = next_snapshot(
                self.published,
                raws,
                endpoints,
                now,
                floor_version=self.floor_version,
                services=self.topology.services,
            )
            if published is not None:
                publish_snapshot(self.mesh, published)
                self.observers.published(self.published, published)
                self.published = published
                self.floor_version = published.version
                self._say(
                    f"published version {published.version}: {len(published.resources)} "
                    f"resources, {len(published.endpoints)} endpoints, {published.hash[:19]} "
                    f"({(time.perf_counter() - started) * 1000:.0f} ms)"
                )
        self.write_status()
        return published

    def _validated_config(
        self, records: Sequence[RegistryRecord], now: float
    ) -> tuple[list[Issue], list[Any]]:
        cache = self.cache
        with config_lock(self.mesh, shared=True, timeout=2.0):
            # After taking the lock: an apply that wrote before this instant is in what we
            # read now (meshctl apply --wait relies on it).
            self.config_read_at = self.clock()
            signature = dir_signature(self.mesh.config, CONFIG_SUFFIXES)
            registry_signature = dir_signature(self.mesh.registry, (RECORD_SUFFIX,))
            self.seen_signature = (signature, registry_signature)
            if signature != cache.signature:
                try:
                    resources, load_issues = load_config(
                        list_files(self.mesh.config, CONFIG_SUFFIXES)
                    )
                except Exception as exc:  # a loader bug must not kill the control plane
                    self._say("".join(traceback.format_exception(exc)).rstrip())
                    resources, load_issues = [], [internal_issue(exc)]
                cache.signature = signature
                cache.resources = resources
                cache.load_issues = load_issues
                cache.analysis_key = None
        topology = validation_topology(self.topology, records, now)
        key = repr(topology)
        if key != cache.analysis_key:
            try:
                analysis = analyze_config(cache.resources, topology) if cache.resources else []
            except Exception as exc:
                self._say("".join(traceback.format_exception(exc)).rstrip())
                analysis = [internal_issue(exc)]
            cache.issues = cache.load_issues + analysis
            cache.analysis_key = key
        return cache.issues, cache.resources

    def _reject(self, refused: list[Issue], issues: list[Issue], now: float) -> None:
        listed = [i.to_json() for i in refused]
        if self.rejected is not None and self.rejected.get("issues") == listed:
            return  # the same refusal: keep when it first happened
        self.rejected = {"at": now, "issues": listed}
        lines = "\n  ".join(str(i) for i in refused)
        self._say(f"refused config, keeping the last good one:\n  {lines}")

    # -- status ----------------------------------------------------------------------------

    def status(self) -> ManagerStatus:
        snap = self.published
        return ManagerStatus(
            version=snap.version if snap else self.floor_version or None,
            hash=snap.hash if snap else None,
            published_at=snap.generated_at if snap else None,
            heartbeat=self.clock(),
            pid=os.getpid(),
            started_at=self.started_at,
            config_read_at=self.config_read_at,
            rejected=self.rejected,
            warnings=tuple(self.warnings),
            endpoints=self.endpoint_count,
            registry_problems=tuple(self.registry_problems),
            ca=self.ca.status() if self.ca is not None else None,
        )

    def write_status(self) -> None:
        try:
            # Rewritten every heartbeat: atomic for readers, no fsync (the snapshot has one).
            write_json(self.mesh.manager_status, self.status().to_json(), durable=False)
        except OSError as exc:
            self._say(f"cannot write {self.mesh.manager_status}: {exc}")

    def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} manager: {message}", file=self.log, flush=True)

    # -- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        config_burst = Debouncer(settings.quiet, settings.max_delay)
        registry_burst = Debouncer(settings.quiet, settings.max_delay)
        bursts = (config_burst, registry_burst)
        wake = asyncio.Event()

        def poke(kind: str = "config", *, urgent: bool = False) -> None:
            (config_burst if kind == "config" else registry_burst).poke(loop.time(), urgent=urgent)
            wake.set()

        watcher = asyncio.create_task(self._watch(poke, stop))
        poke()
        next_poll = next_beat = next_ca = loop.time()
        try:
            while not stop.is_set():
                now = loop.time()
                if self.ca is not None and now >= next_ca:
                    answered = await asyncio.to_thread(self._ca_pass)
                    next_ca = loop.time() + settings.ca_poll
                    if answered:
                        await asyncio.to_thread(self.write_status)
                        next_beat = loop.time() + settings.heartbeat
                if now >= next_poll:
                    next_poll = now + settings.poll
                    current = (
                        dir_signature(self.mesh.config, CONFIG_SUFFIXES),
                        dir_signature(self.mesh.registry, (RECORD_SUFFIX,)),
                    )
                    if current != self.seen_signature:
                        poke()
                if self.expiry is not None and self.clock() >= self.expiry:
                    self.expiry = None
                    poke("registry")
                if any(b.due(loop.time()) for b in bursts):
                    for burst in bursts:  # one evaluation reads both directories
                        burst.fire()
                    await asyncio.to_thread(self._evaluate_safely)
                    next_beat = loop.time() + settings.heartbeat
                    continue
                if loop.time() >= next_beat:
                    await asyncio.to_thread(self.write_status)
                    next_beat = loop.time() + settings.heartbeat
                deadlines = [next_poll, next_beat]
                if self.ca is not None:
                    deadlines.append(next_ca)
                deadlines.extend(d for b in bursts if (d := b.deadline()) is not None)
                if self.expiry is not None:
                    deadlines.append(loop.time() + max(0.0, self.expiry - self.clock()) + 0.01)
                timeout = max(0.0, min(deadlines) - loop.time())
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(wake, stop), timeout)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher

    def _ca_pass(self) -> list[str]:
        """Reload a changed CA, answer new CSRs; a failure is reported, never fatal."""
        assert self.ca is not None
        try:
            self.ca.check_reload()
            return self.ca.process(self.records)
        except Exception as exc:  # e.g. a full disk: report, keep serving, retry next pass
            self._say("CA pass failed: " + "".join(traceback.format_exception(exc)).rstrip())
            return []

    def _evaluate_safely(self) -> None:
        try:
            self.evaluate()
        except Exception as exc:  # e.g. a full disk: report, keep serving, retry next poke
            self._say("evaluation failed: " + "".join(traceback.format_exception(exc)).rstrip())

    async def _watch(self, poke: Callable[..., None], stop: asyncio.Event) -> None:
        try:
            from watchfiles import awatch
        except ImportError:
            self._say("watchfiles missing: polling only")
            return

        def wanted(_change: Any, path: str) -> bool:
            if os.path.basename(path) == APPLIED_MARKER:
                return True
            parent = os.path.basename(os.path.dirname(path))
            suffixes = CONFIG_SUFFIXES if parent == "config" else (RECORD_SUFFIX,)
            return relevant(path, suffixes)

        while not stop.is_set():
            try:
                async for changes in awatch(
                    self.mesh.config,
                    self.mesh.registry,
                    watch_filter=wanted,
                    stop_event=stop,
                    recursive=False,
                    step=10,
                    debounce=200,
                    rust_timeout=1000,
                ):
                    for _change, path in changes:
                        name = os.path.basename(path)
                        if os.path.basename(os.path.dirname(path)) == "registry":
                            poke("registry")
                        else:
                            poke("config", urgent=name == APPLIED_MARKER)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a watched directory vanished, inotify limits...
                self._say(f"file watching failed ({exc}); polling, retrying the watch in 2 s")
            # The watch ended (or failed): the poll covers the gap; watch again when possible.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@contextlib.contextmanager
def single_instance(mesh: MeshDir) -> Any:
    """Hold ``status/.manager.lock``: two managers on one directory would fight over versions."""
    mesh.status.mkdir(parents=True, exist_ok=True)
    fd = os.open(mesh.status / ".manager.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"another manager is already running on {mesh.root}") from None
        yield
    finally:
        os.close(fd)
