"""The field types every kind of the Istio model shares: durations, string matches,
percentages, port and workload selectors.

Primitives: ``Duration`` (float seconds, marked for the loader), ``StringMatch``, ``Percent``
with ``share``, ``PortSelector``, ``WorkloadSelector``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal


class DurationMarker:
    """Marks a float field parsed from an Istio duration string ("2.5s", "100ms", "1m")."""


Duration = Annotated[float, DurationMarker]

EMPTY: Mapping[str, Any] = {}


def empty_map() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class StringMatch:
    """``exact | prefix | regex``; ``kind`` None means presence (``{}``)."""

    kind: Literal["exact", "prefix", "regex"] | None = None
    value: str = ""


@dataclass(frozen=True, slots=True)
class Percent:
    value: float = 0.0


def share(percentage: Percent | None, percent: int | None = None, default: float = 0.0) -> float:
    """The fraction (0..1) of requests a ``percentage`` covers, falling back to Istio's
    deprecated integer ``percent`` field, then to ``default`` when neither is set."""
    if percentage is not None:
        return percentage.value / 100.0
    if percent is not None:
        return percent / 100.0
    return default


@dataclass(frozen=True, slots=True)
class PortSelector:
    number: int | None = None


@dataclass(frozen=True, slots=True)
class WorkloadSelector:
    match_labels: Mapping[str, str] = field(default_factory=empty_map)
