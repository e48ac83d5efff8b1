"""YAML text (or plain mappings) → typed ``Resource`` objects, with every schema problem found.

Primitives: ``Source`` (file, line, document index), ``Resource`` (kind, name, the raw
document, the typed spec and a field-path → line map), ``LoadResult`` (resources plus
``Issue``s), ``load_text`` (one YAML text), ``load_resources`` (already-parsed documents) and
``later_files_win`` (the rule for several files applied in order). Reading files is the
caller's: ``mesh.manager.yaml_files.load_paths`` reads files and folders and calls these.

Each document's envelope is checked here (apiVersion, kind, metadata); its spec is converted
by ``mesh.config.convert`` (the one camelCase ↔ snake_case mapping, driven by the model's type
hints). Unknown fields are errors with a did-you-mean hint (Lab decision 9); wrong types, bad
durations and duplicate keys are errors with the field path and line. Input is bounded (size,
documents, nodes) so a hostile file gets a clear refusal instead of a hang.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mesh.config import issues as codes
from mesh.config.convert import Converter, did_you_mean, type_name
from mesh.config.issues import Issue
from mesh.config.model import GROUP_VERSIONS, SECURITY_GROUP, SPEC_GROUPS, SPEC_TYPES

MAX_FILE_BYTES = 1 << 20
MAX_DOCUMENTS = 1000
MAX_NODES_PER_DOCUMENT = 100_000

OTHER_ISTIO_KINDS = (
    "ServiceEntry",
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
# Kinds whose metadata.namespace the lab honours (security policy is scoped by namespace:
# istio-system is mesh-wide); the traffic kinds still live in the one namespace "default".
NAMESPACED_KINDS = frozenset(k for k, g in SPEC_GROUPS.items() if g == SECURITY_GROUP)


@cache
def _yaml() -> Any:
    """PyYAML, imported on first use: sidecars load snapshots (JSON) and never parse YAML, and
    not importing it keeps about 2 MB off every proxy's resident memory."""
    import yaml

    return yaml


def _fast_loader() -> Any:
    # libyaml's composer when PyYAML was built with it (about 10x faster), same nodes and marks.
    yaml = _yaml()
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Source:
    file: str = ""
    line: int = 0
    index: int = 0


@dataclass(frozen=True, slots=True)
class Resource:
    """One Istio resource: its identity, raw document, typed spec and where it was written."""

    kind: str
    api_version: str
    name: str
    namespace: str
    raw: Mapping[str, Any]
    spec: Any
    source: Source = Source()
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def display_name(self) -> str:
        """``foo/default`` for the namespaced (security) kinds, else the name."""
        return f"{self.namespace}/{self.name}" if self.kind in NAMESPACED_KINDS else self.name

    def line_of(self, path: str) -> int:
        """Line of a spec field path (or of its nearest written parent)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("", self.source.line)

    def issue(self, severity: codes.Severity, code: str, path: str, message: str) -> Issue:
        return Issue(
            severity,
            code,
            message,
            kind=self.kind,
            name=self.display_name,
            file=self.source.file,
            line=self.line_of(path),
            path=path,
        )


@dataclass
class LoadResult:
    resources: list[Resource] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(issue.is_error for issue in self.issues)

    def extend(self, other: LoadResult) -> None:
        self.resources.extend(other.resources)
        self.issues.extend(other.issues)


# ---------------------------------------------------------------- YAML nodes → values


class _TooLarge(Exception):
    pass


class _NodeReader:
    """Turns one composed YAML document into plain values, recording each path's line."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.problems: list[tuple[str, int, str]] = []  # (path, line, message)
        self.nodes = 0
        yaml = _yaml()
        self._mapping, self._sequence, self._scalar_node = (
            yaml.MappingNode,
            yaml.SequenceNode,
            yaml.ScalarNode,
        )
        self._dump = yaml.safe_dump
        self._scalars = yaml.SafeLoader("")

    def read(self, node: Any, path: str) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES_PER_DOCUMENT:
            raise _TooLarge
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, self._mapping):
            result: dict[str, Any] = {}
            self._scalars.flatten_mapping(node)
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                key_text = str(key) if not isinstance(key, str) else key
                child = f"{path}.{key_text}" if path else key_text
                if key_text in result:
                    self.problems.append(
                        (child, key_node.start_mark.line + 1, f"duplicate key {key_text!r}")
                    )
                result[key_text] = self.read(value_node, child)
            return result
        if isinstance(node, self._sequence):
            return [self.read(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: Any) -> Any:
        if isinstance(node, self._scalar_node):
            return self._scalars.construct_object(node, deep=True)
        # A mapping or list used as a key: YAML allows it, Kubernetes does not.
        return self._dump(self._scalars.construct_object(node, deep=True)).strip()


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
        if raw_ns is not None and kind in NAMESPACED_KINDS:
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
        elif raw_ns is not None:
            if raw_ns != DEFAULT_NAMESPACE:
                found.append(
                    issue(
                        "Error",
                        codes.NOT_SUPPORTED,
                        f"namespace {raw_ns!r}: the lab has one namespace, {DEFAULT_NAMESPACE!r}",
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
                name=f"{namespace}/{name}" if kind in NAMESPACED_KINDS else name,
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
    """Load every document of one YAML text."""
    result = LoadResult()
    size = len(text)
    if size > MAX_FILE_BYTES:
        result.issues.append(
            Issue(
                "Error",
                codes.INPUT_TOO_LARGE,
                f"file is {size} bytes; the limit is {MAX_FILE_BYTES} (1 MiB): split it",
                file=filename,
            )
        )
        return result
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            result.issues.append(
                Issue("Error", codes.YAML_SYNTAX, f"file is not UTF-8 text: {exc}", file=filename)
            )
            return result
    try:
        documents = _yaml().compose_all(text, Loader=_fast_loader())
        for index, node in enumerate(documents):
            if index >= MAX_DOCUMENTS:
                result.issues.append(
                    Issue(
                        "Error",
                        codes.INPUT_TOO_LARGE,
                        f"more than {MAX_DOCUMENTS} documents in one file: refused",
                        file=filename,
                    )
                )
                return LoadResult(issues=result.issues)
            if node is None:
                continue
            reader = _NodeReader()
            source = Source(filename, node.start_mark.line + 1, index)
            try:
                data = reader.read(node, "")
            except _TooLarge:
                result.issues.append(
                    Issue(
                        "Error",
                        codes.INPUT_TOO_LARGE,
                        f"document {index + 1} expands to more than {MAX_NODES_PER_DOCUMENT} "
                        "YAML nodes (anchors/aliases?): refused",
                        file=filename,
                        line=source.line,
                    )
                )
                continue
            if data is None:
                continue
            resource, found = _document_issues(data, source, reader.lines)
            for path, line, message in reader.problems:
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
    except _yaml().YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        detail = f"{context}, {problem}" if context else problem
        result.issues.append(
            Issue(
                "Error",
                codes.YAML_SYNTAX,
                f"invalid YAML at {where}{detail}",
                file=filename,
                line=mark.line + 1 if mark else 0,
            )
        )
    except RecursionError:
        result.issues.append(
            Issue("Error", codes.INPUT_TOO_LARGE, "YAML nested too deeply: refused", file=filename)
        )
    return result


def later_files_win(result: LoadResult) -> LoadResult:
    """Files are applied in order: a resource defined again in a later file replaces the
    earlier definition (as ``kubectl apply -f a.yaml -f b.yaml`` would), so
    ``-f scenarios/reset.yaml -f scenarios/dark-launch.yaml`` means "baseline, then dark
    launch". Twice in one file stays an error (``analyze`` reports it)."""
    latest: dict[tuple[str, str, str], Resource] = {}
    for resource in result.resources:
        key = resource.key
        earlier = latest.get(key)
        if earlier is not None and earlier.source.file == resource.source.file:
            continue
        if earlier is not None:
            result.issues.append(
                resource.issue(
                    "Info",
                    codes.OVERRIDDEN,
                    "",
                    f"replaces the definition in {earlier.source.file}:{earlier.source.line}",
                )
            )
        latest[key] = resource
    keep = {id(r) for r in latest.values()}
    result.resources = [
        r for r in result.resources if id(r) in keep or latest[r.key].source.file == r.source.file
    ]
    return result


def load_resources(raws: Iterable[Mapping[str, Any]], filename: str = "<snapshot>") -> LoadResult:
    """Load already-parsed documents (e.g. a snapshot's resources)."""
    result = LoadResult()
    for index, raw in enumerate(raws):
        resource, found = _document_issues(raw, Source(filename, 0, index), {})
        result.issues.extend(found)
        if resource is not None:
            result.resources.append(resource)
    return result
