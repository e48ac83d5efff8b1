"""The sidecar's side of the shared mesh directory: registry record and status file.

Both are JSON written atomically (temp file in the same directory, then ``os.replace``), so
a reader (the manager, ``meshctl``) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

_serial = itertools.count()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name per process and write (not ``tempfile``: it drags shutil, bz2 and lzma
    # into the proxy's memory for one name).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{next(_serial)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
