"""Istio YAML from files and folders: the file-system half of ``mesh.config.loader``.

Primitives: ``yaml_files(paths)`` (the ``*.yaml``/``*.yml`` files named by files and folders,
folders searched recursively and sorted, each file once) and ``load_paths(paths)`` (read them,
refusing files over the loader's size limit before reading, and load them in order: a
resource defined again in a later file replaces the earlier one). ``meshctl``, the manager
(its ``config/`` directory) and the lab's baseline all read config through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.loader import MAX_FILE_BYTES, later_files_win, load_text
from mesh.config.resource import LoadResult

YAML_SUFFIXES = (".yaml", ".yml")


def yaml_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named by ``paths`` (folders are searched, sorted for determinism)."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix in YAML_SUFFIXES and p.is_file() and not p.name.startswith(".")
                )
            )
        else:
            files.append(path)
    unique: dict[Path, Path] = {}
    for path in files:  # the same file named twice is loaded once
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def load_paths(paths: Sequence[str | Path]) -> LoadResult:
    """Load files and folders of ``*.yaml``/``*.yml`` (multi-document)."""
    result = LoadResult()
    for path in yaml_files(paths):
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                result.issues.append(
                    Issue(
                        "Error",
                        codes.INPUT_TOO_LARGE,
                        f"file is {size} bytes; the limit is 1 MiB: split it",
                        file=str(path),
                    )
                )
                continue
            data = path.read_bytes()
        except OSError as exc:
            result.issues.append(
                Issue("Error", codes.YAML_SYNTAX, f"cannot read: {exc.strerror}", file=str(path))
            )
            continue
        result.extend(load_text(data, str(path)))
    return later_files_win(result)
