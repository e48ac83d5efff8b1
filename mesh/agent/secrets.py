"""A pod's secrets directory (``MESH_SECRETS_DIR``), as the sidecar reads it.

Layout (Kubernetes' projected-volume style, the contract with the sidecar):
``..gen-<n>/`` (0700) holds ``key.pem`` (0600, PKCS8), ``cert-chain.pem`` (leaf, then
intermediates), ``root-cert.pem`` (the trust bundle) and ``meta.json``
(``identity``, ``not_before``, ``not_after``, ``renew_at``, ``serial``); ``current`` is a
symlink to the newest complete generation.

Primitives: ``write_generation(directory, files, meta)`` — every file written and fsynced in a
new generation, then ``current`` swapped with ``os.replace`` of a temporary symlink (a reader
sees the old generation or the new one, never a half-written one), then generations older than
the previous one removed (a sidecar that opened the previous one a moment ago still finds it);
``read_meta(directory)`` — ``current/meta.json`` or None; ``prepare(directory)`` — the
directory itself, 0700; ``parse_time`` / ``format_time`` — the ``...Z`` timestamps of
``meta.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CURRENT = "current"
GENERATION_PREFIX = "..gen-"
KEY_FILE = "key.pem"
CHAIN_FILE = "cert-chain.pem"
ROOT_FILE = "root-cert.pem"
META_FILE = "meta.json"
_GENERATION = re.compile(r"^\.\.gen-(\d+)$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def prepare(directory: Path) -> Path:
    """The secrets directory, created 0700 (and closed again if it was opened up)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)
    return directory


def generations(directory: Path) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            match = _GENERATION.match(name)
            if match:
                found.append(int(match.group(1)))
    return sorted(found)


def current_generation(directory: Path) -> int | None:
    try:
        target = os.readlink(directory / CURRENT)
    except OSError:
        return None
    match = _GENERATION.match(os.path.basename(target))
    return int(match.group(1)) if match else None


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_generation(directory: Path, files: Mapping[str, bytes], meta: Mapping[str, Any]) -> Path:
    """A new generation with ``files`` (name → content; ``key.pem`` gets 0600) and
    ``meta.json``, made ``current`` atomically. Returns the generation's path."""
    prepare(directory)
    previous = current_generation(directory)
    number = max([0, *generations(directory)]) + 1
    generation = directory / f"{GENERATION_PREFIX}{number}"
    generation.mkdir(mode=0o700)
    for name, data in files.items():
        _write(generation / name, data, 0o600 if name == KEY_FILE else 0o644)
    _write(generation / META_FILE, (json.dumps(dict(meta), indent=1) + "\n").encode(), 0o644)
    fd = os.open(generation, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    link = directory / f".{CURRENT}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(generation.name, link)
    os.replace(link, directory / CURRENT)
    for old in generations(directory):
        if old not in (number, previous):
            shutil.rmtree(directory / f"{GENERATION_PREFIX}{old}", ignore_errors=True)
    return generation


def read_meta(directory: Path) -> dict[str, Any] | None:
    """``current/meta.json`` as written, or None (no generation yet, or unreadable)."""
    try:
        data = json.loads((directory / CURRENT / META_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
