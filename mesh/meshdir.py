"""The contract between the planes: the shared mesh directory ($MESH_DIR) and its records.

Everything the manager, the sidecars and ``meshctl`` exchange goes through files here, and
this module is the one place that spells them:

- ``MeshDir``: the layout (``config/``, ``registry/<pod>.json``, ``snapshot/snapshot.json``,
  ``csr/<pod>.pem`` and ``certs/<pod>.pem`` + ``certs/root-cert.pem`` (the mesh CA's exchange,
  public material only),
  ``status/<pod>.json``, ``status/manager.json``, ``observe/targets.json`` and
  ``observe/history.json`` (the manager's output for Prometheus and the console, formats in
  ``mesh.manager.observers``), ``logs/``).
- ``atomic_write(path, data)``: a temp file in the same directory (unique per process and
  write; not ``tempfile``, which would drag shutil, bz2 and lzma into every proxy's memory),
  optional fsync, ``os.replace``, fsync of the directory. Readers never see a half-written
  file, and a bind-mounted *directory* sees the new inode (a bind-mounted single file would
  stay pinned to the old one). ``write_json`` / ``read_json`` on top of it.
- The records: ``RegistryRecord`` (a pod's registration, written by its sidecar),
  ``ProxyStatus`` (what a proxy applied), ``ManagerStatus`` (what the manager published or
  refused), each with ``to_json`` and a ``from_json`` that says what is wrong with a bad
  file; the snapshot (``mesh.snapshot``: pure, since the routing core reads it) is read and
  published with ``read_snapshot`` / ``publish_snapshot``.
- ``config_lock(mesh, shared=...)``: ``fcntl.flock`` on ``config/.lock``. ``meshctl apply``
  and ``delete`` hold it exclusively for read-validate-write, so concurrent applies serialise
  and lose nothing; the manager holds it shared while it reads ``config/`` so it never sees a
  half-done multi-file apply. ``mark_applied`` writes ``config/.applied``: "publish now".
- ``list_files``, ``dir_signature`` (names, sizes, mtimes, inodes: the polling safety net),
  ``relevant`` (is a watch event about a file, not a temp or lock file).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.snapshot import SNAPSHOT_FILE, TOPOLOGY_FILE, Endpoint, Snapshot
from mesh.topology import DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT

MANAGER_STATUS = "manager.json"
LOCK_FILE = ".lock"
# Written by meshctl after a complete apply/delete (under the lock): "publish now".
APPLIED_MARKER = ".applied"
CONFIG_SUFFIXES = (".yaml", ".yml")
RECORD_SUFFIX = ".json"
PEM_SUFFIX = ".pem"
ROOT_CERT_NAME = "root-cert.pem"
# The manager's status file is not a proxy's; every other status/*.json is.
NOT_A_PROXY = frozenset({MANAGER_STATUS})
DEFAULT_TTL = 10.0
# "workload": a pod without a sidecar (sidecar.istio.io/inject: "false"), registered by the
# lab's node agent so that it is still a Service endpoint, as Kubernetes lists it.
ROLES = ("sidecar", "gateway", "workload")
ENDPOINT_ROLES = ("sidecar", "workload")


class MeshDirError(RuntimeError):
    """The mesh directory is missing or unusable (exit code 2 at the CLI)."""


@dataclass(frozen=True)
class MeshDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshot"

    @property
    def snapshot_file(self) -> Path:
        return self.snapshot_dir / SNAPSHOT_FILE

    @property
    def status(self) -> Path:
        return self.root / "status"

    @property
    def manager_status(self) -> Path:
        return self.status / MANAGER_STATUS

    @property
    def observe(self) -> Path:
        """Apart from ``status/`` (every other file there is a proxy's) and ``snapshot/``
        (which every sidecar watches)."""
        return self.root / "observe"

    @property
    def scrape_targets(self) -> Path:
        return self.observe / "targets.json"

    @property
    def config_history(self) -> Path:
        return self.observe / "history.json"

    @property
    def topology_file(self) -> Path:
        """The workloads the manager serves (``topology.json``), for meshctl."""
        return self.root / TOPOLOGY_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def csr_dir(self) -> Path:
        """``csr/<pod>.pem``: a workload's certificate signing request (public)."""
        return self.root / "csr"

    @property
    def certs_dir(self) -> Path:
        """``certs/<pod>.pem`` (the CA's answer: the chain) and ``certs/root-cert.pem``.
        Public material only: no private key is ever written under $MESH_DIR."""
        return self.root / "certs"

    @property
    def root_cert_file(self) -> Path:
        return self.certs_dir / ROOT_CERT_NAME

    def csr_file(self, pod: str) -> Path:
        return self.csr_dir / f"{pod}{PEM_SUFFIX}"

    def cert_file(self, pod: str) -> Path:
        return self.certs_dir / f"{pod}{PEM_SUFFIX}"

    def registry_file(self, pod: str) -> Path:
        return self.registry / f"{pod}{RECORD_SUFFIX}"

    def status_file(self, pod: str) -> Path:
        return self.status / f"{pod}{RECORD_SUFFIX}"

    def create(self) -> MeshDir:
        for path in (self.config, self.registry, self.snapshot_dir, self.status):
            path.mkdir(parents=True, exist_ok=True)
        return self

    def require(self) -> MeshDir:
        """Raise ``MeshDirError`` unless this looks like a live mesh directory."""
        if not self.root.is_dir():
            raise MeshDirError(f"no live mesh at {self.root} (directory does not exist)")
        if not self.config.is_dir():
            raise MeshDirError(f"no live mesh at {self.root} (it has no config/ directory)")
        return self


# ---------------------------------------------------------------- writing files

_serial = itertools.count()


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, never half.

    The directory is created when missing (a sidecar re-registers after an ``rm -r``).
    ``durable=False`` skips the fsyncs: still atomic for readers, just not crash-proof — for
    files rewritten every second anyway (heartbeats), where an fsync only adds I/O latency.
    """
    if isinstance(data, str):
        data = data.encode()
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    # Dot-prefixed, no .yaml/.json suffix: watchers and loaders ignore the temp file.
    tmp = directory / f".{path.name}.{os.getpid()}.{next(_serial)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(directory)


def atomic_remove(path: Path) -> None:
    """Remove ``path`` (if present) and make the removal durable."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is; some filesystems refuse this.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n", durable=durable)


def read_snapshot(mesh: MeshDir) -> Snapshot:
    """The published snapshot; ``FileNotFoundError`` when none is, ``SnapshotError`` (or
    another ``OSError``) when it cannot be read."""
    return Snapshot.from_json(mesh.snapshot_file.read_bytes())


def publish_snapshot(mesh: MeshDir, snapshot: Snapshot) -> None:
    atomic_write(mesh.snapshot_file, snapshot.to_json())


# ---------------------------------------------------------------- the config lock


@contextlib.contextmanager
def config_lock(mesh: MeshDir, *, shared: bool = False, timeout: float = 30.0) -> Iterator[bool]:
    """Hold ``config/.lock``; yields False if it could not be had within ``timeout`` (shared only).

    An exclusive caller (apply/delete) waits up to ``timeout`` and then raises ``MeshDirError``;
    a shared caller (the manager) goes on unlocked rather than stall publishing behind a hung
    client, and learns so from the yielded flag.
    """
    mesh.config.mkdir(parents=True, exist_ok=True)
    fd = os.open(mesh.config / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    locked = False
    try:
        deadline = time.monotonic() + timeout
        op = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, op)
                locked = True
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    if shared:
                        break  # e.g. a filesystem without flock: read anyway
                    raise MeshDirError(f"cannot lock {mesh.config / LOCK_FILE}: {exc}") from exc
            if time.monotonic() >= deadline:
                if shared:
                    break
                raise MeshDirError(
                    f"another meshctl holds {mesh.config / LOCK_FILE} for more than {timeout:g} s"
                )
            time.sleep(0.01)
        yield locked
    finally:
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def mark_applied(mesh: MeshDir) -> None:
    """Tell the manager a transaction is complete (call while holding the config lock)."""
    atomic_write(mesh.config / APPLIED_MARKER, f"{time.time()}\n", durable=False)


# ---------------------------------------------------------------- directories


def list_files(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Regular, non-hidden files of ``directory`` with one of ``suffixes``, sorted by name."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [
        directory / name
        for name in names
        if not name.startswith(".") and name.endswith(suffixes) and (directory / name).is_file()
    ]


# ---------------------------------------------------------------- records


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class RecordError(ValueError):
    """A registry file that is not a usable record."""


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """``registry/<pod>.json``: a pod's registration, rewritten by its sidecar every heartbeat.

    A gateway is nobody's upstream: it may register without a service port (0)."""

    pod: str
    service: str
    address: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False
    heartbeat: float = 0.0
    ttl: float = DEFAULT_TTL
    role: str = "sidecar"
    admin_address: str = ""
    admin_port: int = 0
    namespace: str = DEFAULT_NAMESPACE
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    # The pod's Deployment ("" = not given): the endpoint's workload in metrics.
    workload: str = ""

    @property
    def expires_at(self) -> float:
        return self.heartbeat + self.ttl

    def to_json(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "service": self.service,
            "labels": dict(self.labels),
            "address": self.address,
            "port": self.port,
            "ready": self.ready,
            "heartbeat": self.heartbeat,
            "ttl": self.ttl,
            "admin_port": self.admin_port,
            "admin_address": self.admin_address,
            "role": self.role,
            "namespace": self.namespace,
            "service_account": self.service_account,
        } | ({"workload": self.workload} if self.workload else {})

    def endpoint(self) -> Endpoint:
        return Endpoint(
            pod=self.pod,
            service=self.service,
            address=self.address,
            port=self.port,
            labels=dict(self.labels),
            ready=self.ready,
            namespace=self.namespace,
            workload=self.workload,
            service_account=self.service_account,
            # A pod registered by a bare workload (no sidecar) speaks plaintext only.
            proxy="none" if self.role == "workload" else "sidecar",
        )

    @classmethod
    def from_json(cls, data: Any, *, source: str = "") -> RegistryRecord:
        where = f"{source}: " if source else ""
        if not isinstance(data, Mapping):
            raise RecordError(f"{where}not a JSON object")
        try:
            labels = data.get("labels") or {}
            if not isinstance(labels, Mapping):
                raise TypeError("labels must be an object")
            ttl = float(data.get("ttl") or DEFAULT_TTL)
            heartbeat = float(data.get("heartbeat") or 0.0)
            # A gateway is nobody's upstream: it may register without a service port.
            port = int(data["port"]) if data.get("port") is not None else 0
            role = str(data.get("role") or "sidecar")
            record = cls(
                pod=str(data["pod"]),
                service=str(data.get("service") or labels.get("app") or ""),
                address=str(data["address"]),
                port=port,
                labels={str(k): str(v) for k, v in labels.items()},
                ready=data.get("ready") is True,
                heartbeat=heartbeat,
                ttl=ttl,
                role=role,
                admin_address=str(data.get("admin_address") or data.get("address") or ""),
                admin_port=int(data.get("admin_port") or 0),
                namespace=str(data.get("namespace") or DEFAULT_NAMESPACE),
                service_account=str(data.get("service_account") or DEFAULT_SERVICE_ACCOUNT),
                workload=str(data.get("workload") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"{where}bad registry record: {exc!r}") from None
        if not record.pod:
            raise RecordError(f"{where}bad registry record: pod is required")
        if not 0 < record.port < 65536 and not (record.role == "gateway" and record.port == 0):
            raise RecordError(f"{where}bad registry record: port must be 1..65535")
        if not (math.isfinite(ttl) and ttl > 0 and math.isfinite(heartbeat)):
            raise RecordError(f"{where}bad registry record: heartbeat and ttl > 0 must be numbers")
        if role not in ROLES:
            raise RecordError(f"{where}bad registry record: role {role!r} not in {ROLES}")
        return record


@dataclass(frozen=True, slots=True)
class ProxyStatus:
    """``status/<pod>.json``: what a sidecar or gateway applied, rewritten every heartbeat.

    ``error`` is the last refusal (a snapshot that did not parse or compile) and
    ``error_version`` the version it was about; the proxy keeps serving ``version``.
    ``from_json`` never fails: a field it cannot read is None (the reader says STALE)."""

    pod: str
    role: str = "sidecar"
    version: int | None = None
    hash: str | None = None
    applied_at: float | None = None
    ready: bool = False
    error: str | None = None
    error_version: int | None = None
    heartbeat: float | None = None
    probe_error: str | None = None
    listener_error: str | None = None
    # Upstream endpoints this proxy's outlier detection has ejected now:
    # ``{"pod", "address", "cluster", "until"}`` (``until``: Unix time the ejection ends).
    ejected: tuple[Mapping[str, Any], ...] = ()
    # The proxy's workload identity (``spiffe://...``; None: none loaded, plaintext only),
    # its inbound mTLS mode, and why the last secrets generation was refused.
    identity: str | None = None
    mtls_mode: str | None = None
    secrets_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "pod": self.pod,
            "role": self.role,
            "version": self.version,
            "hash": self.hash,
            "applied_at": self.applied_at,
            "ready": self.ready,
            "error": self.error,
            "error_version": self.error_version,
            "heartbeat": self.heartbeat,
        }
        for key in _OPTIONAL_TEXT:  # written only when set
            if value := getattr(self, key):
                data[key] = value
        if self.ejected:
            data["ejected"] = [dict(e) for e in self.ejected]
        return data

    def ejections(self, now: float) -> list[tuple[str, float]]:
        """``(ejected pod, seconds left)`` of the ejections not over at ``now``; malformed
        entries skipped."""
        found = []
        for entry in self.ejected:
            try:
                left = float(entry["until"]) - now
                pod = str(entry["pod"])
            except (KeyError, TypeError, ValueError):
                continue
            if left > 0:
                found.append((pod, left))
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, pod: str = "") -> ProxyStatus:
        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value else None

        return cls(
            pod=str(data.get("pod") or pod),
            role=str(data.get("role") or "sidecar"),
            version=_int(data.get("version")),
            hash=text("hash"),
            applied_at=_float(data.get("applied_at")),
            ready=data.get("ready") is True,
            error=text("error"),
            error_version=_int(data.get("error_version")),
            heartbeat=_float(data.get("heartbeat")),
            ejected=_mappings(data.get("ejected")),
            **{key: text(key) for key in _OPTIONAL_TEXT},
        )


_OPTIONAL_TEXT = ("probe_error", "listener_error", "identity", "mtls_mode", "secrets_error")


def _mappings(value: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, Mapping))


@dataclass(frozen=True, slots=True)
class ManagerStatus:
    """``status/manager.json``: what the manager published, what it refused and why (issues
    as ``Issue.to_json`` objects), rewritten every heartbeat. ``from_json`` never fails."""

    version: int | None = None
    hash: str | None = None
    published_at: float | None = None
    heartbeat: float | None = None
    pid: int | None = None
    started_at: float | None = None
    config_read_at: float | None = None
    # {"at": time, "issues": [...]} while the config on disk is refused, else None.
    rejected: Mapping[str, Any] | None = None
    warnings: tuple[dict[str, Any], ...] = ()
    endpoints: int = 0
    registry_problems: tuple[str, ...] = ()
    # The mesh CA (mesh.manager.ca.CAShell.status): its root, what it issued and refused.
    ca: Mapping[str, Any] | None = None

    @property
    def rejected_at(self) -> float | None:
        return _float((self.rejected or {}).get("at"))

    @property
    def rejected_issues(self) -> tuple[dict[str, Any], ...]:
        issues = (self.rejected or {}).get("issues")
        return tuple(i for i in issues or () if isinstance(i, dict))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "hash": self.hash,
            "published_at": self.published_at,
            "heartbeat": self.heartbeat,
            "pid": self.pid,
            "started_at": self.started_at,
            "config_read_at": self.config_read_at,
            "rejected": None if self.rejected is None else dict(self.rejected),
            "warnings": list(self.warnings),
            "endpoints": self.endpoints,
            "registry_problems": list(self.registry_problems),
            "ca": None if self.ca is None else dict(self.ca),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ManagerStatus:
        data = data or {}
        rejected = data.get("rejected")
        warnings = data.get("warnings")
        problems = data.get("registry_problems")
        return cls(
            version=_int(data.get("version")),
            hash=data.get("hash") if isinstance(data.get("hash"), str) else None,
            published_at=_float(data.get("published_at")),
            heartbeat=_float(data.get("heartbeat")),
            pid=_int(data.get("pid")),
            started_at=_float(data.get("started_at")),
            config_read_at=_float(data.get("config_read_at")),
            rejected=rejected if isinstance(rejected, Mapping) else None,
            warnings=tuple(w for w in warnings or () if isinstance(w, dict))
            if isinstance(warnings, list)
            else (),
            endpoints=_int(data.get("endpoints")) or 0,
            registry_problems=tuple(map(str, problems)) if isinstance(problems, list) else (),
            ca=data.get("ca") if isinstance(data.get("ca"), Mapping) else None,
        )


def read_manager_status(mesh: MeshDir) -> ManagerStatus | None:
    """``status/manager.json``, or None when the manager never wrote one (or it is garbage)."""
    data = read_json(mesh.manager_status)
    return None if data is None else ManagerStatus.from_json(data)
