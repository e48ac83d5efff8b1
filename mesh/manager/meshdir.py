"""The shared mesh directory ($MESH_DIR) on disk: its layout and the few ways it is written.

Primitives:

- ``MeshDir``: the paths (``config/``, ``registry/``, ``snapshot/``, ``status/``) of one mesh.
- ``atomic_write(path, data)``: temp file in the same directory, fsync, ``os.replace``, fsync
  the directory. Readers never see a half-written file, and a bind-mounted *directory* sees the
  new inode (a bind-mounted single file would stay pinned to the old one).
- ``config_lock(mesh, shared=...)``: ``fcntl.flock`` on ``config/.lock``. ``meshctl apply``
  and ``delete`` hold it exclusively for read-validate-write, so concurrent applies serialise
  and lose nothing; the manager holds it shared while it reads ``config/`` so it never sees a
  half-done multi-file apply (resource moved out of one file, not yet written to another).
- ``read_json(path)``: a small JSON object, or None when missing or unreadable (a writer may
  be mid-way on a filesystem without atomic rename; the next read fixes it).
- ``dir_signature(dir, suffixes)``: names, sizes, mtimes and inodes, for the polling safety net.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.snapshot import SNAPSHOT_FILE

MANAGER_STATUS = "manager.json"
LOCK_FILE = ".lock"
# Written by meshctl after a complete apply/delete (under the lock): "publish now".
APPLIED_MARKER = ".applied"
CONFIG_SUFFIXES = (".yaml", ".yml")
# The manager's status file is not a proxy's; every other status/*.json is.
NOT_A_PROXY = frozenset({MANAGER_STATUS})


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
    def logs(self) -> Path:
        return self.root / "logs"

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


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, never half.

    ``durable=False`` skips the fsyncs: still atomic for readers, just not crash-proof — for
    files rewritten every second anyway (heartbeats), where an fsync only adds I/O latency.
    """
    if isinstance(data, str):
        data = data.encode()
    directory = path.parent
    # Dot-prefixed, no .yaml/.json suffix: watchers and loaders ignore the temp file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
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


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n", durable=durable)


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
