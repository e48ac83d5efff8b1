"""The config directory as a store of resources: what ``meshctl apply`` and ``delete`` change.

Pure planning (text in, text out), then one small I/O step:

- ``parse_file(name, text)`` splits a YAML stream into ``Doc``s with the loader's splitter
  (``mesh.config.yaml_documents``), keeping each document's text exactly as written, so
  removing one resource from a hand-edited multi-document file leaves the others (and their
  comments) untouched.
- ``plan_apply(files, incoming)`` / ``plan_delete(files, keys)``: which files to write or
  remove and, per resource, ``created`` / ``configured`` / ``unchanged`` / ``deleted`` /
  ``not found``. A resource replaces the one of the same kind, namespace and name *wherever
  it lives* (any file name), and lands in ``<kind>-<name>.yaml``.
- ``ChangePlan.kept``: the existing documents the plan keeps, per file — with the incoming
  resources this is the whole resulting config, which must validate before anything is
  written.
- ``canonical_name(key)``: a resource's file name, only for names that are DNS-1123 (so no
  ``../`` or ``/`` ever reaches the filesystem).
- ``read_files(config_dir)`` / ``commit(config_dir, plan)``: the I/O, atomic per file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh.config.yaml_documents import plain_document, split_documents
from mesh.manager.compile import DEFAULT_NAMESPACE, resource_key
from mesh.meshdir import CONFIG_SUFFIXES, atomic_remove, atomic_write, list_files

Key = tuple[str, str, str]  # (kind, namespace, name)

GROUP = "networking.istio.io"
KINDS: dict[str, str] = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Gateway": "gateways",
    "ServiceEntry": "serviceentries",
    "PeerAuthentication": "peerauthentications",
    "AuthorizationPolicy": "authorizationpolicies",
}
# The API group of each kind (kubectl's references name it).
KIND_GROUPS: dict[str, str] = {
    **{kind: GROUP for kind in KINDS},
    "PeerAuthentication": "security.istio.io",
    "AuthorizationPolicy": "security.istio.io",
}
KIND_ALIASES: dict[str, str] = {
    "virtualservice": "VirtualService",
    "virtualservices": "VirtualService",
    "vs": "VirtualService",
    "destinationrule": "DestinationRule",
    "destinationrules": "DestinationRule",
    "dr": "DestinationRule",
    "gateway": "Gateway",
    "gateways": "Gateway",
    "gw": "Gateway",
    "serviceentry": "ServiceEntry",
    "serviceentries": "ServiceEntry",
    "se": "ServiceEntry",
    "peerauthentication": "PeerAuthentication",
    "peerauthentications": "PeerAuthentication",
    "pa": "PeerAuthentication",
    "authorizationpolicy": "AuthorizationPolicy",
    "authorizationpolicies": "AuthorizationPolicy",
    "ap": "AuthorizationPolicy",
}
for _kind, _plural in KINDS.items():
    KIND_ALIASES[f"{_kind.lower()}.{KIND_GROUPS[_kind]}"] = _kind
    KIND_ALIASES[f"{_plural}.{KIND_GROUPS[_kind]}"] = _kind

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def normalize_kind(text: str) -> str | None:
    """``vs``, ``virtualservices``, ``VirtualService`` ... -> ``VirtualService`` (None if unknown)."""
    if text in KINDS:
        return text
    return KIND_ALIASES.get(text.lower())


def kind_ref(kind: str) -> str:
    """kubectl's singular resource reference: ``virtualservice.networking.istio.io``."""
    return f"{kind.lower()}.{KIND_GROUPS.get(kind, GROUP)}"


def valid_name(name: str) -> bool:
    return len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name) is not None


def valid_namespace(namespace: str) -> bool:
    return len(namespace) <= 63 and DNS1123_LABEL.fullmatch(namespace) is not None


class ResourceNameError(ValueError):
    """A resource name that cannot become a file name."""


def canonical_name(key: Key) -> str:
    kind, namespace, name = key
    if kind not in KINDS:
        raise ResourceNameError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not valid_name(name):
        raise ResourceNameError(
            f"metadata.name {name!r} is not a DNS-1123 subdomain (lowercase letters, digits, "
            "'-' and '.', starting and ending with a letter or digit, at most 253)"
        )
    if not valid_namespace(namespace):
        raise ResourceNameError(f"metadata.namespace {namespace!r} is not a DNS-1123 label")
    if namespace == DEFAULT_NAMESPACE:
        return f"{kind.lower()}-{name}.yaml"
    # "__" cannot occur in a DNS-1123 name, so this never collides with a default-ns name.
    return f"{kind.lower()}-{namespace}__{name}.yaml"


@dataclass(frozen=True)
class Doc:
    """One YAML document of a config file: its text as written and what it defines."""

    text: str
    key: Key | None = None
    raw: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ConfigFile:
    name: str
    text: str
    docs: tuple[Doc, ...] = ()


def parse_file(name: str, text: str) -> ConfigFile:
    docs = []
    for document in split_documents(text):
        # An unparsable document is kept as written (the loader reports it).
        data = plain_document(document)
        if isinstance(data, Mapping) and data.get("kind") in KINDS:
            docs.append(Doc(document.text, resource_key(data), _plain(data)))
        else:
            docs.append(Doc(document.text))
    return ConfigFile(name, text, tuple(docs))


def _plain(raw: Mapping[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return plain


def dump_resource(raw: Mapping[str, Any]) -> str:
    return yaml.safe_dump(_plain(raw), sort_keys=False, default_flow_style=False)


def join_documents(chunks: Iterable[str]) -> str:
    parts = [c if c.endswith("\n") else c + "\n" for c in chunks]
    return "---\n".join(parts)


@dataclass
class ChangePlan:
    """What to write (``None`` removes the file) and the per-resource outcome, in input order."""

    writes: dict[str, str | None] = field(default_factory=dict)
    outcomes: list[tuple[Key, str]] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.writes)


def _without(files: Sequence[ConfigFile], keys: set[Key]) -> tuple[dict[str, str], set[str]]:
    """Each file's text without the documents defining ``keys``; and which files changed."""
    kept: dict[str, str] = {}
    touched: set[str] = set()
    for cfg in files:
        remaining = [d for d in cfg.docs if d.key not in keys]
        if len(remaining) == len(cfg.docs):
            kept[cfg.name] = cfg.text
        else:
            touched.add(cfg.name)
            kept[cfg.name] = join_documents(d.text for d in remaining) if remaining else ""
    return kept, touched


def locate(files: Sequence[ConfigFile]) -> dict[Key, list[tuple[str, Doc]]]:
    where: dict[Key, list[tuple[str, Doc]]] = {}
    for cfg in files:
        for doc in cfg.docs:
            if doc.key is not None:
                where.setdefault(doc.key, []).append((cfg.name, doc))
    return where


def plan_apply(
    files: Sequence[ConfigFile], incoming: Sequence[Mapping[str, Any]], *, prune: bool = False
) -> ChangePlan:
    """Replace or create each incoming resource. Raises ``ResourceNameError`` for a bad name.

    ``prune``: the resulting config is exactly the input; every other document goes
    (``pruned``), whatever file it is in — ``make reset`` uses it to undo every scenario.
    """
    where = locate(files)
    latest: dict[Key, Mapping[str, Any]] = {}
    for raw in incoming:
        canonical_name(resource_key(raw))  # refuse a bad name before planning anything
        latest[resource_key(raw)] = raw  # a resource given twice: the last one wins
    outcomes: list[tuple[Key, str]] = []
    changed: dict[Key, Mapping[str, Any]] = {}
    for key, raw in latest.items():
        found = where.get(key, [])
        if not found:
            outcomes.append((key, "created"))
            changed[key] = raw
        elif len(found) == 1 and found[0][1].raw == _plain(raw):
            outcomes.append((key, "unchanged"))
        else:
            outcomes.append((key, "configured"))
            changed[key] = raw
    if prune:
        unchanged = {key for key, action in outcomes if action == "unchanged"}
        kept, touched = _only(files, unchanged)
        outcomes.extend((key, "pruned") for key in sorted(where) if key not in latest)
        validation: dict[str, str] = {}
    else:
        kept, touched = _without(files, set(changed))
        # What validation sees: every existing document not superseded by the input.
        validation = _without(files, set(latest))[0]
    plan = ChangePlan(outcomes=outcomes, kept=validation)
    for name in touched:
        plan.writes[name] = kept[name] or None
    for key, raw in changed.items():
        target = canonical_name(key)
        previous = plan.writes.get(target, kept.get(target, ""))
        chunks = [d.text for d in split_documents(previous or "")]
        plan.writes[target] = join_documents([*chunks, dump_resource(raw)])
    return plan


def _only(files: Sequence[ConfigFile], keys: set[Key]) -> tuple[dict[str, str], set[str]]:
    """Each file reduced to the documents defining ``keys`` (everything else pruned)."""
    kept: dict[str, str] = {}
    touched: set[str] = set()
    for cfg in files:
        remaining = [d for d in cfg.docs if d.key in keys]
        if len(remaining) == len(cfg.docs):
            kept[cfg.name] = cfg.text
        else:
            touched.add(cfg.name)
            kept[cfg.name] = join_documents(d.text for d in remaining) if remaining else ""
    return kept, touched


def plan_delete(files: Sequence[ConfigFile], keys: Sequence[Key]) -> ChangePlan:
    where = locate(files)
    present = {k for k in keys if k in where}
    kept, touched = _without(files, present)
    plan = ChangePlan(kept=kept)
    seen: set[Key] = set()
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        plan.outcomes.append((key, "deleted" if key in present else "not found"))
    for name in touched:
        plan.writes[name] = kept[name] or None
    return plan


def read_files(config_dir: Path) -> list[ConfigFile]:
    files = []
    for path in list_files(config_dir, CONFIG_SUFFIXES):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the manager's loader reports an unreadable file
        files.append(parse_file(path.name, text))
    return files


def commit(config_dir: Path, plan: ChangePlan) -> None:
    """Write new files first, then removals: a crash in between duplicates, never loses."""
    for name, text in sorted(plan.writes.items()):
        if text is not None:
            atomic_write(config_dir / name, text)
    for name, text in sorted(plan.writes.items()):
        if text is None:
            atomic_remove(config_dir / name)
