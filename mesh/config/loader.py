"""YAML text (or plain mappings) → typed ``Resource`` objects, with every schema problem found.

Primitives: ``Source`` (file, line, document index), ``Resource`` (kind, name, the raw
document, the typed spec and a field-path → line map), ``LoadResult`` (resources plus
``Issue``s), and ``load_text`` / ``load_paths`` / ``load_resources``.

This module holds the one camelCase ↔ snake_case mapping: a dataclass field
``consecutive_5xx_errors`` is written ``consecutive5xxErrors`` (``yaml_name``). Conversion is
driven by the model's type hints, so a new field needs no loader code. Unknown fields are
errors with a did-you-mean hint (Lab decision 9); wrong types, bad durations and duplicate
keys are errors with the field path and line. Input is bounded (size, documents, nodes) so a
hostile file gets a clear refusal instead of a hang.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import SPEC_TYPES, DurationMarker, StringMatch

MAX_FILE_BYTES = 1 << 20
MAX_DOCUMENTS = 1000
MAX_NODES_PER_DOCUMENT = 100_000

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1alpha3", "v1beta1", "v1")
OTHER_ISTIO_KINDS = ("ServiceEntry", "Sidecar", "EnvoyFilter", "WorkloadEntry", "WorkloadGroup")
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
DEFAULT_NAMESPACE = "default"


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
            name=self.name,
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


# ---------------------------------------------------------------- names


def yaml_name(python_name: str) -> str:
    """``consecutive_5xx_errors`` → ``consecutive5xxErrors`` (the one naming rule)."""
    head, *rest = python_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@cache
def _fields_of(cls: type) -> dict[str, tuple[str, Any]]:
    """YAML name → (python name, type hint) for a model dataclass."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {
        f.metadata.get("yaml", yaml_name(f.name)): (f.name, hints[f.name])
        for f in dataclasses.fields(cls)
    }


# ---------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Parse a Go/protobuf duration ("2.5s", "1m30s", "100ms") into seconds.

    Raises ValueError with a message a trainee understands.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty duration")
    if value.startswith("-"):
        raise ValueError(f"duration {text!r} is negative")
    pos = 0
    total = 0.0
    while pos < len(value):
        part = _DURATION_PART.match(value, pos)
        if part is None:
            if re.fullmatch(r"\d+(\.\d*)?", value):
                raise ValueError(f"duration {text!r} has no unit: write e.g. {value}s or {value}ms")
            raise ValueError(f"{text!r} is not a duration (use e.g. 2.5s, 100ms, 1m)")
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        pos = part.end()
    return total


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


# ---------------------------------------------------------------- values → model


class _Converter:
    """Builds model dataclasses from plain values by type hint, collecting problems."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []  # (path, message)

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def convert(self, value: Any, hint: Any, path: str) -> Any:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            if value is None:
                return None
            return self.convert(value, options[0], path)
        if origin is typing.Annotated:
            base, *marks = typing.get_args(hint)
            if DurationMarker in marks:
                return self._duration(value, path)
            return self.convert(value, base, path)
        if hint is Any:
            return value
        if origin is typing.Literal:
            allowed = typing.get_args(hint)
            if value not in allowed:
                choices = ", ".join(str(a) for a in allowed)
                hint_text = _did_you_mean(str(value), [str(a) for a in allowed])
                self.fail(path, f"{value!r} is not one of {choices}{hint_text}")
                return None
            return value
        if origin is tuple:
            (item,) = typing.get_args(hint)[:1]
            if value is None:
                return ()
            if not isinstance(value, list):
                self.fail(path, f"must be a list, not {_type_name(value)}")
                return ()
            return tuple(self.convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))
        if origin in (Mapping, dict) or hint is dict:
            _, item = typing.get_args(hint) or (str, Any)
            if value is None:
                return {}
            if not isinstance(value, dict):
                self.fail(path, f"must be a mapping, not {_type_name(value)}")
                return {}
            return {str(k): self.convert(v, item, f"{path}.{k}") for k, v in value.items()}
        if hint is StringMatch:
            return self._string_match(value, path)
        if dataclasses.is_dataclass(hint):
            return self._dataclass(value, hint, path)
        return self._scalar(value, hint, path)

    def _scalar(self, value: Any, hint: Any, path: str) -> Any:
        if hint is bool:
            if isinstance(value, bool):
                return value
            self.fail(path, f"must be true or false, not {value!r}")
            return None
        if hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            self.fail(path, f"must be an integer, not {_type_name(value)} {value!r}")
            return None
        if hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            self.fail(path, f"must be a number, not {_type_name(value)} {value!r}")
            return None
        if hint is str:
            if isinstance(value, str):
                return value
            quoted = f' (quote it: "{value}")' if isinstance(value, (int, float, bool)) else ""
            self.fail(path, f"must be a string, not {_type_name(value)} {value!r}{quoted}")
            return None
        raise TypeError(f"model type {hint!r} has no converter")  # a bug in the model, not input

    def _duration(self, value: Any, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"must be a duration string like 2.5s, not {_type_name(value)}")
            return None
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(path, str(exc))
            return None

    def _string_match(self, value: Any, path: str) -> StringMatch | None:
        if value is None:
            return StringMatch()
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping with one of exact, prefix, regex, not {value!r}")
            return None
        kinds = [k for k in value if k in ("exact", "prefix", "regex")]
        unknown = [k for k in value if k not in ("exact", "prefix", "regex")]
        for key in unknown:
            self.fail(
                f"{path}.{key}",
                f"unknown field {key!r}{_did_you_mean(str(key), ['exact', 'prefix', 'regex'])}"
                " (a string match is one of exact, prefix, regex)",
            )
        if len(kinds) > 1:
            self.fail(path, f"only one of exact, prefix, regex may be set (found {kinds})")
            return None
        if not kinds:
            return StringMatch()  # {} = presence
        kind = kinds[0]
        raw = value[kind]
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                raw = str(raw)  # `exact: 1` in YAML means the string "1" to a trainee
            else:
                self.fail(f"{path}.{kind}", f"must be a string, not {_type_name(raw)}")
                return None
        return StringMatch(kind, raw)  # type: ignore[arg-type]

    def _dataclass(self, value: Any, cls: type, path: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {_type_name(value)} {_short(value)}")
            return None
        fields = _fields_of(cls)
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            known = fields.get(key)
            if known is None:
                hint = _did_you_mean(str(key), list(fields))
                self.fail(child, f"unknown field {key!r}{hint}")
                continue
            python_name, hint_type = known
            converted = self.convert(item, hint_type, child)
            if converted is not None:
                kwargs[python_name] = converted
        return cls(**kwargs)


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f' (did you mean "{close[0]}"?)' if close else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
                f"document {source.index + 1} is a {_type_name(data)}, not a mapping "
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
    if group != ISTIO_GROUP:
        if kind in SPEC_TYPES:
            return None, [
                issue(
                    "Error",
                    codes.SCHEMA_VALIDATION_ERROR,
                    f"apiVersion {api_version!r} is not an Istio networking version "
                    f"(use networking.istio.io/v1, v1beta1 or v1alpha3)",
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
        hint = _did_you_mean(kind, list(SPEC_TYPES))
        return None, [
            issue("Error", codes.SCHEMA_VALIDATION_ERROR, f"unknown kind {kind!r}{hint}", "kind")
        ]
    found: list[Issue] = []
    if version not in ISTIO_VERSIONS:
        found.append(
            issue(
                "Error",
                codes.SCHEMA_VALIDATION_ERROR,
                f"unknown apiVersion {api_version!r} (use {ISTIO_GROUP}/v1, v1beta1 or v1alpha3)",
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
                        f"unknown field {key!r}{_did_you_mean(str(key), sorted(METADATA_FIELDS))}",
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
                    f"{_did_you_mean(str(key), ['apiVersion', 'kind', 'metadata', 'spec'])}",
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
                else f"spec must be a mapping, not {_type_name(spec_value)}",
                "spec",
                kind=kind,
                name=name,
            )
        )
        return None, found
    converter = _Converter()
    spec = converter._dataclass(spec_value, SPEC_TYPES[kind], "")
    spec_lines = {
        path[len("spec.") :]
        if path.startswith("spec.")
        else ("" if path == "spec" else "~" + path): line
        for path, line in lines.items()
        if path.startswith("spec")
    }
    spec_lines[""] = lines.get("", source.line)
    for path, message in converter.problems:
        found.append(
            Issue(
                "Error",
                codes.SCHEMA_VALIDATION_ERROR,
                message,
                kind=kind,
                name=name,
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
                    if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith(".")
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
            if path.stat().st_size > MAX_FILE_BYTES:
                result.issues.append(
                    Issue(
                        "Error",
                        codes.INPUT_TOO_LARGE,
                        f"file is {path.stat().st_size} bytes; the limit is 1 MiB: split it",
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
    return _later_files_win(result)


def _later_files_win(result: LoadResult) -> LoadResult:
    """Files are applied in order: a resource defined again in a later file replaces the
    earlier definition (as ``kubectl apply -f a.yaml -f b.yaml`` would), so
    ``-f scenarios/reset.yaml -f scenarios/dark-launch.yaml`` means "baseline, then dark
    launch". Twice in one file stays an error (``analyze`` reports it)."""
    latest: dict[tuple[str, str], Resource] = {}
    for resource in result.resources:
        key = (resource.kind, resource.name)
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
        r
        for r in result.resources
        if id(r) in keep or latest[(r.kind, r.name)].source.file == r.source.file
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
