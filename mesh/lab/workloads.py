"""Reading the lab's workloads: profiles and manifest files from disk into a ``Topology``.

The parsing is pure (``mesh.workloads``); this module only finds and reads files:
``workloads/`` of the repository (``/app/workloads`` in the image), its profiles in
``workloads/profiles/<name>.yaml``, and ``workloads/istio-system.yaml`` (the ingress gateway),
which every lab loads before its own files, as an Istio install precedes the workloads.

Primitives: ``Profile`` (name, the files with their namespaces, the baseline path),
``load_profile(name)``, ``profile_names()``, ``read_workloads(entries)`` → ``Workloads`` (every
finding, with file and line), ``lab_workloads(profile=..., files=...)`` (the control plane
plus a profile's or the given files; raises ``WorkloadError`` listing every error), and
``topology_from_env()`` for programs started by a lab (``MESHLAB_WORKLOADS``: the files,
``os.pathsep``-separated, each optionally ``FILE=NAMESPACE``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mesh.config.issues import Issue
from mesh.topology import Topology
from mesh.workloads.manifests import ManifestFile, Workloads, parse_workloads
from mesh.workloads.profiles import ProfileEntry, parse_profile

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKLOADS_DIR = REPO_ROOT / "workloads"
PROFILES_DIR = WORKLOADS_DIR / "profiles"
CONTROL_PLANE = WORKLOADS_DIR / "istio-system.yaml"
DEFAULT_PROFILE = "course"
ENV_WORKLOADS = "MESHLAB_WORKLOADS"


class WorkloadError(ValueError):
    """Workloads that cannot start; ``issues`` says every reason with file and line."""

    def __init__(self, issues: Sequence[Issue], what: str = "the workloads") -> None:
        self.issues = list(issues)
        errors = [i for i in self.issues if i.is_error] or self.issues
        lines = "\n".join(f"  {issue}" for issue in errors)
        super().__init__(f"{what} cannot start:\n{lines}")


@dataclass(frozen=True)
class Entry:
    """One manifest file of a lab, and the namespace it is applied to (``kubectl -n``)."""

    path: Path
    namespace: str | None = None

    def spec(self) -> str:
        return f"{self.path}={self.namespace}" if self.namespace else str(self.path)

    @classmethod
    def parse(cls, text: str) -> Entry:
        path, sep, namespace = text.rpartition("=")
        if sep and path and "/" not in namespace:
            return cls(Path(path), namespace or None)
        return cls(Path(text))


@dataclass(frozen=True)
class Profile:
    name: str
    entries: tuple[Entry, ...]
    baseline: Path | None
    description: str = ""


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name: str) -> Profile:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise WorkloadError(
            [
                Issue(
                    "Error",
                    "MSH0006",
                    f"no profile {name!r} (profiles: {', '.join(profile_names())}); "
                    f"a profile is a file {PROFILES_DIR.relative_to(REPO_ROOT)}/<name>.yaml",
                )
            ],
            f"profile {name}",
        )
    spec, issues = parse_profile(name, path.read_text(encoding="utf-8"), _shown(path))
    if spec is None:
        raise WorkloadError(issues, f"profile {name}")
    entries = tuple(_entry(item) for item in spec.workloads)
    baseline = REPO_ROOT / spec.baseline if spec.baseline else None
    return Profile(name, entries, baseline, spec.description)


def _entry(item: ProfileEntry) -> Entry:
    return Entry(WORKLOADS_DIR / item.file, item.namespace)


def _shown(path: Path) -> str:
    """A path as a trainee reads it: relative to the current directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_workloads(entries: Sequence[Entry]) -> Workloads:
    files: list[ManifestFile] = []
    missing: list[Issue] = []
    for entry in entries:
        try:
            text = entry.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            missing.append(Issue("Error", "MSH0006", f"cannot read {entry.path}: {exc}"))
            continue
        files.append(ManifestFile(_shown(entry.path), text, entry.namespace))
    workloads = parse_workloads(files)
    workloads.issues[:0] = missing
    return workloads


def lab_entries(profile: str | None = None, files: Sequence[str | Path] = ()) -> list[Entry]:
    """The control plane, then the given files (or the profile's, default ``course``)."""
    chosen = (
        [Entry.parse(str(f)) for f in files]
        if files
        else list(load_profile(profile or DEFAULT_PROFILE).entries)
    )
    return [Entry(CONTROL_PLANE), *chosen]


def lab_workloads(entries: Sequence[Entry]) -> Workloads:
    """The workloads of these files, or ``WorkloadError`` with every error (nothing starts)."""
    workloads = read_workloads(entries)
    if not workloads.ok:
        raise WorkloadError(workloads.issues)
    return workloads


def topology_from_env(default_profile: str = DEFAULT_PROFILE) -> Topology:
    """The topology a program started by a lab serves (``MESHLAB_WORKLOADS``), else the
    default profile's."""
    spec = os.environ.get(ENV_WORKLOADS, "")
    if spec:
        entries = [Entry.parse(part) for part in spec.split(os.pathsep) if part]
    else:
        entries = lab_entries(default_profile)
    return lab_workloads(entries).topology


def entries_env(entries: Sequence[Entry]) -> str:
    return os.pathsep.join(entry.spec() for entry in entries)
