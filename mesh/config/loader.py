"""YAML text (or plain mappings) → typed ``Resource`` objects, with every schema problem found.

Primitives (the types, ``Resource`` and ``LoadResult``, are in ``mesh.config.resource``):
``load_text`` (one YAML text), ``load_resources`` (already-parsed documents),
``later_files_win`` / ``latest_definitions`` (the rule for several files applied in order)
and ``normal_documents`` (the normal form the manager publishes). Reading files is the
caller's: ``mesh.manager.yaml_files.load_paths`` reads files and folders and calls these.

Documents are split and parsed by ``mesh.config.yaml_documents``; each document's envelope
is checked here (apiVersion, kind, metadata); its spec is converted
by ``mesh.config.convert`` (the one camelCase ↔ snake_case mapping, driven by the model's type
hints). Unknown fields are errors with a did-you-mean hint (Lab decision 9); wrong types, bad
durations and duplicate keys are errors with the field path and line. Input is bounded (size,
documents, nodes) so a hostile file gets a clear refusal instead of a hang.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mesh.config import issues as codes
from mesh.config.convert import Converter, did_you_mean, type_name
from mesh.config.issues import ConfigError, Issue
from mesh.config.model import GROUP_VERSIONS, SPEC_GROUPS, SPEC_TYPES
from mesh.config.normal_form import to_normal
from mesh.config.resource import LoadResult, Resource, Source, display_name
from mesh.config.yaml_documents import MAX_DOCUMENTS, MAX_FILE_BYTES, read_stream

__all__ = ["MAX_DOCUMENTS", "MAX_FILE_BYTES", "later_files_win", "load_resources", "load_text"]

OTHER_ISTIO_KINDS = (
    "Sidecar",
    "EnvoyFilter",
    "WorkloadEntry",
    "WorkloadGroup",
    "RequestAuthentication",
)
METADATA_FIELDS = frozenset(
    {
        "name",
        "namespace",
        "labels",
        "annotations",
        "generateName",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "managedFields",
        "ownerReferences",
        "finalizers",
    }
)
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DEFAULT_NAMESPACE = "default"


# ---------------------------------------------------------------- documents


def _document_issues(
    data: Any, source: Source, lines: Mapping[str, int]
) -> tuple[Resource | None, list[Issue]]:
    """Check one document's envelope and build its Resource (or say why not)."""

    def issue(
        severity: codes.Severity, code: str, message: str, path: str = "", **kw: str
    ) -> Issue:
        return Issue(
            severity,
            code,
            message,
            file=source.file,
            line=lines.get(path, source.line),
            path=path,
            **kw,
        )

    if not isinstance(data, dict):
        return None, [
            issue(
                "Error",
                codes.SCHEMA_VALIDATION_ERROR,
                f"document {source.index + 1} is a {type_name(data)}, not a mapping "
                "with apiVersion, kind, metadata and spec",
            )
        ]
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        return None, [issue("Error", codes.SCHEMA_VALIDATION_ERROR, "missing kind")]
    if not isinstance(api_version, str) or not api_version:
        return None, [
            issue("Error", codes.SCHEMA_VALIDATION_ERROR, "missing apiVersion", kind=kind)
        ]
    group, _, version = api_version.rpartition("/")
    kind_group = SPEC_GROUPS.get(kind)
    if group not in GROUP_VERSIONS or (kind_group is not None and group != kind_group):
        if kind_group is not None:
            return None, [
                issue(
                    "Error",
                    codes.SCHEMA_VALIDATION_ERROR,
                    f"apiVersion {api_version!r} is not an API version of {kind} "
                    f"(use {_versions_hint(kind_group)})",
                    "apiVersion",
                    kind=kind,
                )
            ]
        name = (
            data.get("metadata", {}).get("name", "")
            if isinstance(data.get("metadata"), dict)
            else ""
        )
        return None, [
            issue(
                "Info",
                codes.SKIPPED_KIND,
                f"{kind} ({api_version}) is not traffic config: skipped",
                kind=kind,
                name=str(name),
            )
        ]
    if kind not in SPEC_TYPES:
        if kind in OTHER_ISTIO_KINDS:
            return None, [
                issue(
                    "Info",
                    codes.NOT_SUPPORTED,
                    f"{kind} is not supported by the lab: skipped",
                    kind=kind,
                )
            ]
        hint = did_you_mean(kind, list(SPEC_TYPES))
        return None, [
            issue("Error", codes.SCHEMA_VALIDATION_ERROR, f"unknown kind {kind!r}{hint}", "kind")
        ]
    found: list[Issue] = []
    if version not in GROUP_VERSIONS[group]:
        found.append(
            issue(
                "Error",
                codes.SCHEMA_VALIDATION_ERROR,
                f"unknown apiVersion {api_version!r} (use {_versions_hint(group)})",
                "apiVersion",
                kind=kind,
            )
        )
    metadata = data.get("metadata")
    name = ""
    namespace = DEFAULT_NAMESPACE
    raw_name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(raw_name, str) or not raw_name:
        found.append(
            issue(
                "Error",
                codes.SCHEMA_VALIDATION_ERROR,
                "missing metadata.name",
                "metadata",
                kind=kind,
            )
        )
    if isinstance(metadata, dict):
        if isinstance(raw_name, str) and raw_name:
            name = raw_name
            if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
                found.append(
                    issue(
                        "Error",
                        codes.SCHEMA_VALIDATION_ERROR,
                        f"metadata.name {name!r} is not a valid DNS-1123 name "
                        "(lowercase letters, digits, '-' and '.')",
                        "metadata.name",
                        kind=kind,
                        name=name,
                    )
                )
        raw_ns = metadata.get("namespace")
        if raw_ns is not None:
            if isinstance(raw_ns, str) and len(raw_ns) <= 63 and DNS1123_LABEL.match(raw_ns):
                namespace = raw_ns
            else:
                found.append(
                    issue(
                        "Error",
                        codes.SCHEMA_VALIDATION_ERROR,
                        f"metadata.namespace {raw_ns!r} is not a valid namespace name "
                        "(a DNS-1123 label: lowercase letters, digits and '-')",
                        "metadata.namespace",
                        kind=kind,
                        name=name,
                    )
                )
        for key in metadata:
            if key not in METADATA_FIELDS:
                found.append(
                    issue(
                        "Error",
                        codes.SCHEMA_VALIDATION_ERROR,
                        f"unknown field {key!r}{did_you_mean(str(key), sorted(METADATA_FIELDS))}",
                        f"metadata.{key}",
                        kind=kind,
                        name=name,
                    )
                )
    for key in data:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            found.append(
                issue(
                    "Error",
                    codes.SCHEMA_VALIDATION_ERROR,
                    f"unknown top-level field {key!r}"
                    f"{did_you_mean(str(key), ['apiVersion', 'kind', 'metadata', 'spec'])}",
                    str(key),
                    kind=kind,
                    name=name,
                )
            )
    spec_value = data.get("spec")
    if not isinstance(spec_value, dict):
        found.append(
            issue(
                "Error",
                codes.SCHEMA_VALIDATION_ERROR,
                "missing spec"
                if spec_value is None
                else f"spec must be a mapping, not {type_name(spec_value)}",
                "spec",
                kind=kind,
                name=name,
            )
        )
        return None, found
    converter = Converter()
    spec = converter.dataclass_of(spec_value, SPEC_TYPES[kind], "")
    spec_lines = {
        path[len("spec.") :]
        if path.startswith("spec.")
        else ("" if path == "spec" else "~" + path): line
        for path, line in lines.items()
        if path.startswith("spec")
    }
    spec_lines[""] = lines.get("", source.line)
    # metadata paths too (no spec field is called "metadata"): findings about annotations.
    spec_lines.update((p, line) for p, line in lines.items() if p.startswith("metadata."))
    for path, message in converter.problems:
        found.append(
            Issue(
                "Error",
                codes.SCHEMA_VALIDATION_ERROR,
                message,
                kind=kind,
                name=display_name(kind, namespace, name),
                file=source.file,
                line=_nearest_line(spec_lines, path, source.line),
                path=path,
            )
        )
    if (
        not name
        or (spec is None)
        or any(i.is_error and i.path.startswith(("apiVersion", "metadata")) for i in found)
    ):
        return None, found
    resource = Resource(
        kind=kind,
        api_version=api_version,
        name=name,
        namespace=namespace,
        raw=data,
        spec=spec,
        source=source,
        lines=spec_lines,
    )
    return resource, found


def _versions_hint(group: str) -> str:
    versions = sorted(GROUP_VERSIONS[group], key=lambda v: (len(v), v))
    return f"{group}/" + ", ".join(versions[:-1]) + " or " + versions[-1]


def _nearest_line(lines: Mapping[str, int], path: str, default: int) -> int:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return lines.get("", default)


def load_text(text: str | bytes, filename: str = "<input>") -> LoadResult:
    """Load every document of one YAML text (up to its first YAML syntax error)."""
    documents, issues = read_stream(text, filename)
    result = LoadResult(issues=issues)
    for document in documents:
        data = document.data
        source = Source(filename, document.line, document.index)
        resource, found = _document_issues(data, source, document.reader.lines)
        for path, line, message in document.reader.problems:
            found.append(
                Issue(
                    "Error",
                    codes.SCHEMA_VALIDATION_ERROR,
                    message,
                    kind=str(data.get("kind", "")) if isinstance(data, dict) else "",
                    file=filename,
                    line=line,
                    path=path.removeprefix("spec."),
                )
            )
            resource = None
        result.issues.extend(found)
        if resource is not None:
            result.resources.append(resource)
    return result


def later_files_win(result: LoadResult) -> LoadResult:
    """Files are applied in order: a resource defined again in a later file replaces the
    earlier definition (as ``kubectl apply -f a.yaml -f b.yaml`` would), so
    ``-f scenarios/reset.yaml -f scenarios/dark-launch.yaml`` means "baseline, then dark
    launch". Twice in one file stays an error (``analyze`` reports it). Each replacement is
    noted (Info MSH0005)."""
    result.resources = latest_definitions(result.resources, result.issues)
    return result


def latest_definitions(
    resources: Sequence[Resource], replaced: list[Issue] | None = None
) -> list[Resource]:
    """``resources`` with every definition replaced by a later file's left out, in order;
    with ``replaced``, an Info MSH0005 is added to it for each replacement."""
    latest: dict[tuple[str, str, str], Resource] = {}
    for resource in resources:
        key = resource.key
        earlier = latest.get(key)
        if earlier is not None and earlier.source.file == resource.source.file:
            continue
        if earlier is not None and replaced is not None:
            replaced.append(
                resource.issue(
                    "Info",
                    codes.OVERRIDDEN,
                    "",
                    f"replaces the definition in {earlier.source.file}:{earlier.source.line}",
                )
            )
        latest[key] = resource
    keep = {id(r) for r in latest.values()}
    return [r for r in resources if id(r) in keep or latest[r.key].source.file == r.source.file]


def normal_documents(raws: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Istio documents → their normal form, as the manager publishes them (for tools and
    tests that write a snapshot by hand). Raises ``ConfigError`` if one does not load."""
    result = load_resources(raws)
    if not result.ok:
        raise ConfigError(result.issues)
    return tuple(to_normal(r) for r in result.resources)


def load_resources(raws: Iterable[Mapping[str, Any]], filename: str = "<snapshot>") -> LoadResult:
    """Load already-parsed documents (e.g. a snapshot's resources)."""
    result = LoadResult()
    for index, raw in enumerate(raws):
        resource, found = _document_issues(raw, Source(filename, 0, index), {})
        result.issues.extend(found)
        if resource is not None:
            result.resources.append(resource)
    return result
