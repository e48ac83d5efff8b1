"""The normal form of a loaded resource: what the manager publishes and a sidecar loads.

The manager parses, converts and validates once; it publishes each accepted resource as a
plain JSON document in the model's own terms, and a sidecar turns that back into the typed
model without checking anything (Istio's proxies never validate: istiod pushes what it
already checked). Primitives:

- ``to_normal(resource)``: ``{"apiVersion", "kind", "metadata": {"name", "namespace"} (and
  the ``annotations`` a proxy acts on: ``istio.io/dry-run``), "spec"}`` where ``spec`` uses the model's field names (snake_case), durations are float
  seconds, a string match is ``{}`` or ``{"exact" | "prefix" | "regex": value}``, and a
  field equal to its default is left out.
- ``from_normal(document)``: the ``Resource`` again, built by the model's type hints. It
  trusts the document; one that is not in normal form raises ``NormalFormError``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from mesh.config.model import SPEC_TYPES, StringMatch
from mesh.config.resource import Resource, Source


class NormalFormError(ValueError):
    """A published document that is not in normal form (or of a kind the proxy lacks)."""


# Annotations a proxy acts on (the rest of the metadata stays with the manager).
PROXY_ANNOTATIONS = ("istio.io/dry-run",)


def to_normal(resource: Resource) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": resource.name, "namespace": resource.namespace}
    written = resource.raw.get("metadata")
    annotations = written.get("annotations") if isinstance(written, Mapping) else None
    if isinstance(annotations, Mapping):
        kept = {k: str(annotations[k]) for k in PROXY_ANNOTATIONS if k in annotations}
        if kept:
            metadata["annotations"] = kept
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "spec": _encode(resource.spec),
    }


def from_normal(document: Mapping[str, Any], index: int = 0) -> Resource:
    try:
        kind = document["kind"]
        metadata = document["metadata"]
        spec = _decode(document["spec"], SPEC_TYPES[kind])
        return Resource(
            kind=kind,
            api_version=document["apiVersion"],
            name=metadata["name"],
            namespace=metadata["namespace"],
            raw=document,
            spec=spec,
            source=Source("<snapshot>", 0, index),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NormalFormError(f"resource {index} is not in normal form: {exc!r}") from exc


# ---------------------------------------------------------------- encoding


def _encode(value: Any) -> Any:
    if isinstance(value, StringMatch):
        return {} if value.kind is None else {value.kind: value.value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name, default in _defaults(type(value)).items():
            item = getattr(value, name)
            if item is None or item == default:
                continue
            out[name] = _encode(item)
        return out
    if isinstance(value, (tuple, list)):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


@cache
def _defaults(cls: type) -> dict[str, Any]:
    """Field name → its default value (None when it has none)."""
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
        else:
            defaults[f.name] = None
    return defaults


# ---------------------------------------------------------------- decoding


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _decode(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _decode(value, next(a for a in typing.get_args(hint) if a is not type(None)))
    if origin is typing.Annotated:
        return _decode(value, typing.get_args(hint)[0])
    if hint is StringMatch:
        if not value:
            return StringMatch()
        ((kind, text),) = value.items()
        return StringMatch(kind, text)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_decode(v, item) for v in value)
    if origin in (Mapping, dict):
        item = typing.get_args(hint)[1]
        return {key: _decode(v, item) for key, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        return hint(**{name: _decode(v, hints[name]) for name, v in value.items()})
    return value
