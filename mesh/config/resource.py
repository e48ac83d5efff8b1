"""A loaded Istio resource and the result of loading: what the loader produces and every
consumer reads.

Primitives: ``Source`` (file, line, document index), ``Resource`` (kind, name, namespace,
the document it came from, the typed spec, and a field-path → line map for findings), and
``LoadResult`` (resources plus ``Issue``s). ``NAMESPACED_KINDS``: the kinds whose findings
always name their namespace (the security kinds); ``display_name`` names a resource so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.model import SECURITY_GROUP, SPEC_GROUPS

# Kinds whose metadata.namespace the lab honours (security policy is scoped by namespace:
# istio-system is mesh-wide); the traffic kinds still live in the one namespace "default".
NAMESPACED_KINDS = frozenset(k for k, g in SPEC_GROUPS.items() if g == SECURITY_GROUP)


def display_name(kind: str, namespace: str, name: str) -> str:
    """How findings name a resource: ``namespace/name`` for the security kinds (their scope is
    their namespace) and for any kind outside ``default``; else just ``name``."""
    if kind in NAMESPACED_KINDS or namespace != "default":
        return f"{namespace}/{name}"
    return name


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
        """``foo/default`` for the security kinds and outside ``default``, else the name."""
        return display_name(self.kind, self.namespace, self.name)

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
