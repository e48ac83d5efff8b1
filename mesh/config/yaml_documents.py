"""A YAML stream as documents: split, parsed within bounds, turned into plain values.

Primitives: ``Document`` (one document's text as written and the file line it starts on),
``split_documents(text)`` (the one splitter: ``load_text`` parses its documents and
``meshctl apply`` rewrites a hand-edited file document by document, keeping the others as
written), ``read_document`` (one document → plain values plus a field-path → line map, or
``NotYaml`` / ``TooLarge``), ``plain_document`` (just the value, None for anything bad) and
``read_stream`` (a whole file: every document's value and lines, within the loader's bounds,
or the findings that say why not — for the Istio loader and the workload manifests alike).

PyYAML is imported on first use: sidecars load snapshots (JSON) and never parse YAML, and
not importing it keeps about 2 MB off every proxy's resident memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from mesh.config import issues as codes
from mesh.config.issues import Issue

MAX_NODES_PER_DOCUMENT = 100_000
MAX_FILE_BYTES = 1 << 20
MAX_DOCUMENTS = 1000


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


class TooLarge(Exception):
    """A document whose aliases expand past ``MAX_NODES_PER_DOCUMENT`` nodes."""


class NodeReader:
    """Turns one composed YAML document into plain values, recording each path's line."""

    def __init__(self, first_line: int = 1) -> None:
        # Line numbers are the file's: a document's node marks count from its own first line.
        self.offset = first_line
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
            raise TooLarge
        self.lines.setdefault(path, node.start_mark.line + self.offset)
        if isinstance(node, self._mapping):
            result: dict[str, Any] = {}
            self._scalars.flatten_mapping(node)
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                key_text = str(key) if not isinstance(key, str) else key
                child = f"{path}.{key_text}" if path else key_text
                if key_text in result:
                    self.problems.append(
                        (
                            child,
                            key_node.start_mark.line + self.offset,
                            f"duplicate key {key_text!r}",
                        )
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


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a YAML stream: its text as written (separator lines dropped) and the
    file line its text starts on."""

    text: str
    line: int


# A line that starts a new YAML document ("---", "--- # c", "--- !tag"); "...": a document end.
DOC_START = re.compile(r"^---(?:[ \t].*)?$")
DOC_END = re.compile(r"^\.\.\.[ \t]*$")


def split_documents(text: str) -> list[Document]:
    """The documents of a YAML stream, each with its own text, empty ones (blank or comments
    only) left out. The one splitter: ``load_text`` parses these, and ``meshctl apply``
    rewrites a hand-edited file document by document, keeping the others as written."""
    chunks: list[tuple[int, list[str]]] = [(1, [])]
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        bare = line.rstrip("\r\n")
        if DOC_START.match(bare):
            chunks.append((number, []))
            rest = bare[3:].strip()
            if rest and not rest.startswith("#"):
                chunks[-1][1].append(rest + "\n")  # "--- !tag" or "--- {inline}" content
            else:
                chunks[-1] = (number + 1, [])
            continue
        if DOC_END.match(bare):
            chunks.append((number + 1, []))
            continue
        chunks[-1][1].append(line)
    documents = [Document("".join(lines), first) for first, lines in chunks]
    return [d for d in documents if _has_content(d.text)]


def _has_content(text: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


class NotYaml(Exception):
    """A document that is not YAML; ``issue`` says where and why."""

    def __init__(self, issue: Issue) -> None:
        self.issue = issue


def read_document(document: Document, filename: str) -> tuple[Any, int, NodeReader] | None:
    """(plain value, first content line, the reader with its lines and problems) of one
    document, or None when it is empty.

    Raises ``NotYaml`` (syntax error, nested too deeply) and ``TooLarge`` (aliases that
    expand past ``MAX_NODES_PER_DOCUMENT``)."""
    yaml = _yaml()
    reader = NodeReader(document.line)
    try:
        node = yaml.compose(document.text, Loader=_fast_loader())
        if node is None:
            return None
        # Constructing scalars can fail too (an unknown tag such as "=" is YAML's "value").
        data = reader.read(node, "")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        line = mark.line + document.line if mark else 0
        where = f"line {line} column {mark.column + 1}: " if mark else ""
        detail = f"{context}, {problem}" if context else problem
        raise NotYaml(
            Issue(
                "Error",
                codes.YAML_SYNTAX,
                f"invalid YAML at {where}{detail}",
                file=filename,
                line=line,
            )
        ) from None
    except RecursionError:
        raise NotYaml(
            Issue("Error", codes.INPUT_TOO_LARGE, "YAML nested too deeply: refused", file=filename)
        ) from None
    return data, node.start_mark.line + document.line, reader


def plain_document(document: Document) -> Any:
    """A document's plain value (what ``yaml.safe_load`` would give, within the loader's
    bounds), or None when it is empty, not YAML, or expands too far."""
    try:
        read = read_document(document, "")
    except (NotYaml, TooLarge):
        return None
    return None if read is None else read[0]


@dataclass(frozen=True, slots=True)
class ReadDocument:
    """One document of a stream read into plain values: its index in the stream, the file
    line its content starts on, and the reader (field-path lines, duplicate keys)."""

    data: Any
    index: int
    line: int
    reader: NodeReader


def read_stream(text: str | bytes, filename: str) -> tuple[list[ReadDocument], list[Issue]]:
    """Every non-empty document of one YAML text, up to its first YAML syntax error, within
    bounds (size, documents, nodes); what cannot be read is a finding with file and line."""
    documents: list[ReadDocument] = []
    issues: list[Issue] = []
    if len(text) > MAX_FILE_BYTES:
        message = f"file is {len(text)} bytes; the limit is {MAX_FILE_BYTES} (1 MiB): split it"
        return documents, [Issue("Error", codes.INPUT_TOO_LARGE, message, file=filename)]
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"file is not UTF-8 text: {exc}"
            return documents, [Issue("Error", codes.YAML_SYNTAX, message, file=filename)]
    split = split_documents(text)
    if len(split) > MAX_DOCUMENTS:
        message = f"more than {MAX_DOCUMENTS} documents in one file: refused"
        return documents, [Issue("Error", codes.INPUT_TOO_LARGE, message, file=filename)]
    for index, document in enumerate(split):
        try:
            read = read_document(document, filename)
        except NotYaml as exc:
            issues.append(exc.issue)
            break  # the rest of the stream is not trustworthy either
        except TooLarge:
            issues.append(
                Issue(
                    "Error",
                    codes.INPUT_TOO_LARGE,
                    f"document {index + 1} expands to more than {MAX_NODES_PER_DOCUMENT} "
                    "YAML nodes (anchors/aliases?): refused",
                    file=filename,
                    line=document.line,
                )
            )
            continue
        if read is None or read[0] is None:
            continue
        data, first_line, reader = read
        documents.append(ReadDocument(data, index, first_line, reader))
    return documents, issues
