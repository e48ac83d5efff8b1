"""Profiles: a named list of workload files plus an optional baseline config (pure parse).

A profile is a YAML file (``workloads/profiles/<name>.yaml``)::

    description: Istio's Bookinfo, exactly; no traffic config
    workloads:
    - bookinfo.yaml                              # relative to workloads/
    - {file: samples/httpbin.yaml, namespace: foo}   # as kubectl apply -n foo
    baseline: scenarios/reset.yaml               # relative to the repository; optional

so a trainer adds a profile without code. ``parse_profile(text, file)`` gives a
``ProfileSpec`` or the findings that say why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mesh.config.issues import Issue
from mesh.config.yaml_documents import read_stream
from mesh.workloads.manifests import WORKLOAD_INVALID


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    file: str
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    name: str
    workloads: tuple[ProfileEntry, ...]
    baseline: str | None = None
    description: str = ""


def parse_profile(name: str, text: str, file: str) -> tuple[ProfileSpec | None, list[Issue]]:
    documents, issues = read_stream(text, file)
    if issues:
        return None, issues

    def error(message: str, path: str = "", line: int = 0) -> tuple[None, list[Issue]]:
        return None, [Issue("Error", WORKLOAD_INVALID, message, file=file, line=line, path=path)]

    if len(documents) != 1 or not isinstance(documents[0].data, Mapping):
        return error("a profile is one mapping with workloads (and optionally baseline)")
    data = documents[0].data
    lines = documents[0].reader.lines
    unknown = sorted(set(data) - {"workloads", "baseline", "description"})
    if unknown:
        return error(
            f"unknown field {unknown[0]!r} (workloads, baseline, description)",
            unknown[0],
            lines.get(unknown[0], 0),
        )
    raw = data.get("workloads")
    if not isinstance(raw, list) or not raw:
        return error(
            "workloads: a list of manifest files is required",
            "workloads",
            lines.get("workloads", 0),
        )
    entries = []
    for i, item in enumerate(raw):
        path = f"workloads[{i}]"
        if isinstance(item, str) and item:
            entries.append(ProfileEntry(item))
        elif (
            isinstance(item, Mapping)
            and isinstance(item.get("file"), str)
            and set(item) <= {"file", "namespace"}
        ):
            namespace = item.get("namespace")
            entries.append(ProfileEntry(item["file"], str(namespace) if namespace else None))
        else:
            return error("each entry is a file name or {file, namespace}", path, lines.get(path, 0))
    baseline = data.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        return error(
            "baseline: a file name (or leave it out)", "baseline", lines.get("baseline", 0)
        )
    return ProfileSpec(name, tuple(entries), baseline, str(data.get("description") or "")), []
