"""Findings about config: one ``Issue`` per problem, Istio-analyzer style.

``Issue`` carries severity, analyzer code, the resource (kind, name), where it was written
(file:line) and the field path inside its spec, e.g.::

    Error [IST0101] (VirtualService reviews scenarios/x.yaml:12) http[0].route[0].destination.subset: subset "v9" is not defined for host reviews

``ConfigError`` wraps a list of issues where config must be refused as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["Error", "Warning", "Info"]

# Istio analyzer codes (pkg/config/analysis/msg/messages.yaml) used by the lab.
REFERENCED_RESOURCE_NOT_FOUND = "IST0101"
SCHEMA_VALIDATION_ERROR = "IST0106"
CONFLICTING_MESH_GATEWAY_VS_HOSTS = "IST0109"
PORT_SELECTOR_REQUIRED = "IST0112"
NO_MATCHING_WORKLOADS = "IST0127"
UNREACHABLE_RULE = "IST0130"
INEFFECTIVE_MATCH = "IST0131"
HOST_NOT_FOUND_IN_GATEWAY = "IST0132"
SCHEMA_WARNING = "IST0133"
CONFLICTING_GATEWAYS = "IST0145"
SUBSET_SELECTS_NO_PODS = "IST0173"
UNKNOWN_DR_HOST = "IST0174"
# Lab-specific findings that have no Istio code.
YAML_SYNTAX = "MSH0001"
NOT_SUPPORTED = "MSH0002"
SKIPPED_KIND = "MSH0003"
INPUT_TOO_LARGE = "MSH0004"
OVERRIDDEN = "MSH0005"
MTLS_CONFLICT = "MSH0006"  # Kiali's mTLS validations (DestinationRule vs PeerAuthentication)
UNKNOWN_SERVICE_ACCOUNT = "MSH0007"  # Kiali's "Service Account not found for this principal"
# Where the lab deliberately differs from Istio (README, "Lab decisions"): always said.
LAB_DECISION = "MSH0008"


@dataclass(frozen=True, slots=True)
class Issue:
    severity: Severity
    code: str
    message: str
    kind: str = ""
    name: str = ""
    file: str = ""
    line: int = 0
    path: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "Error"

    def where(self) -> str:
        location = f"{self.file}:{self.line}" if self.line else self.file
        parts = [p for p in (self.kind, self.name, location) if p]
        return f"({' '.join(parts)})" if parts else ""

    def __str__(self) -> str:
        head = f"{self.severity} [{self.code}]"
        where = self.where()
        field = f"{self.path}: " if self.path else ""
        return " ".join(p for p in (head, where, f"{field}{self.message}") if p)

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "kind": self.kind,
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "path": self.path,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Issue:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})


def errors(issues: Iterable[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.is_error]


class ConfigError(ValueError):
    """Config that must be refused; ``issues`` says every reason."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = list(issues)
        first = errors(self.issues)[:1] or self.issues[:1]
        more = len(errors(self.issues)) - 1
        summary = str(first[0]) if first else "invalid config"
        if more > 0:
            summary += f" (and {more} more error{'s' if more > 1 else ''})"
        super().__init__(summary)
