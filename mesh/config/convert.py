"""Plain values (parsed YAML or JSON) → the model's frozen dataclasses, driven by type hints.

Primitives: ``yaml_name`` (the one camelCase ↔ snake_case rule: ``consecutive_5xx_errors`` is
written ``consecutive5xxErrors``; ``yaml=`` field metadata for the few exceptions),
``parse_duration`` (Go/protobuf durations), and ``Converter``, which builds a dataclass from a
mapping and collects every problem (unknown field with a did-you-mean hint, wrong type, bad
duration) as a (field path, message) pair instead of stopping at the first. A new model field
needs no code here.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from mesh.config.model import DurationMarker, HTTPMatchRequest, StringMatch

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


# ---------------------------------------------------------------- values → model


_DROPPED = object()  # a list entry or mapping value that failed to convert


class Converter:
    """Builds model dataclasses from plain values by type hint, collecting problems."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []  # (path, message)

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def _entry(self, value: Any, hint: Any, path: str) -> Any:
        """One list entry or mapping value. One that failed (or is null where the model has
        no ``| None``) is reported and dropped, so no check downstream trips on a hole: a
        model that reports null entries itself types them ``X | None``."""
        if value is None and hint is StringMatch:
            # A null match is not {} (presence): Istio refuses it ("cannot be null").
            self.fail(path, "may not be null (use {} to match any value)")
            return _DROPPED
        before = len(self.problems)
        converted = self.convert(value, hint, path)
        if converted is None and type(None) not in typing.get_args(hint):
            if len(self.problems) == before:
                self.fail(path, "must not be null")
            return _DROPPED
        return converted

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
                hint_text = did_you_mean(str(value), [str(a) for a in allowed])
                self.fail(path, f"{value!r} is not one of {choices}{hint_text}")
                return None
            return value
        if origin is tuple:
            (item,) = typing.get_args(hint)[:1]
            if value is None:
                return ()
            if not isinstance(value, list):
                self.fail(path, f"must be a list, not {type_name(value)}")
                return ()
            items = []
            for i, v in enumerate(value):
                if v is None and item is HTTPMatchRequest:
                    # Istio skips a null match entry: it matches like an empty one.
                    items.append(HTTPMatchRequest())
                    continue
                entry = self._entry(v, item, f"{path}[{i}]")
                if entry is not _DROPPED:
                    items.append(entry)
            return tuple(items)
        if origin in (Mapping, dict) or hint is dict:
            _, item = typing.get_args(hint) or (str, Any)
            if value is None:
                return {}
            if not isinstance(value, dict):
                self.fail(path, f"must be a mapping, not {type_name(value)}")
                return {}
            entries = ((str(k), self._entry(v, item, f"{path}.{k}")) for k, v in value.items())
            return {k: entry for k, entry in entries if entry is not _DROPPED}
        if hint is StringMatch:
            return self._string_match(value, path)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self.dataclass_of(value, hint, path)
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
            self.fail(path, f"must be an integer, not {type_name(value)} {value!r}")
            return None
        if hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            self.fail(path, f"must be a number, not {type_name(value)} {value!r}")
            return None
        if hint is str:
            if isinstance(value, str):
                return value
            quoted = f' (quote it: "{value}")' if isinstance(value, (int, float, bool)) else ""
            self.fail(path, f"must be a string, not {type_name(value)} {value!r}{quoted}")
            return None
        raise TypeError(f"model type {hint!r} has no converter")  # a bug in the model, not input

    def _duration(self, value: Any, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"must be a duration string like 2.5s, not {type_name(value)}")
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
                f"unknown field {key!r}{did_you_mean(str(key), ['exact', 'prefix', 'regex'])}"
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
                self.fail(f"{path}.{kind}", f"must be a string, not {type_name(raw)}")
                return None
        return StringMatch(kind, raw)

    def dataclass_of(self, value: Any, cls: type, path: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {type_name(value)} {_short(value)}")
            return None
        fields = _fields_of(cls)
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            known = fields.get(key)
            if known is None:
                hint = did_you_mean(str(key), list(fields))
                self.fail(child, f"unknown field {key!r}{hint}")
                continue
            python_name, hint_type = known
            converted = self.convert(item, hint_type, child)
            if converted is not None:
                kwargs[python_name] = converted
        return cls(**kwargs)


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f' (did you mean "{close[0]}"?)' if close else ""


def type_name(value: Any) -> str:
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
