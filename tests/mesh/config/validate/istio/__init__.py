"""Istio's own validation table tests, ported case by case (one YAML file per kind).

``ISTIO_COMMIT`` is the istio/istio commit the cases were read at. ``load_cases(kind_file)``
returns the cases; ``lab_verdict(kind, case)`` runs the lab's loader and per-resource checks
(what Istio's webhook runs; no topology) and says ``valid``, ``warning`` or ``error``;
``agrees(istio, lab)`` compares them (the verdict is ``tests.helpers.istio_verdict``'s) (``no-error``: Istio's test checked errors only).
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mesh.config.loader import load_resources
from mesh.config.validate import RESOURCE_CHECKS
from tests.helpers import istio_verdict

ISTIO_COMMIT = "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c"
HERE = Path(__file__).parent


def _expand(value: Any) -> Any:
    """``{__repeat__: c, times: n}`` → n times c (Istio's size-limit cases, kept short)."""
    if isinstance(value, dict):
        if "__repeat__" in value:
            return value["__repeat__"] * value["times"]
        if "__base64_of_repeat__" in value:
            raw = value["__base64_of_repeat__"] * value["times"]
            return base64.b64encode(raw.encode()).decode()
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


@cache
def load_cases(name: str) -> tuple[dict[str, Any], ...]:
    cases = yaml.safe_load((HERE / f"{name}.yaml").read_text(encoding="utf-8"))
    return tuple(_expand(case) for case in cases)


def lab_verdict(kind: str, case: dict[str, Any]) -> tuple[str, list[str]]:
    """The lab's verdict on one case and the findings behind it."""
    metadata: dict[str, Any] = {"name": "case", "namespace": "default"}
    if case.get("labels"):
        metadata["labels"] = case["labels"]
    raw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": kind,
        "metadata": metadata,
        "spec": case["spec"],
    }
    loaded = load_resources([raw], "case.yaml")
    issues = list(loaded.issues)
    for resource in loaded.resources:
        check = RESOURCE_CHECKS.get(resource.kind)
        if check is not None:
            check(resource, issues)
    valid, warned = istio_verdict(issues)
    verdict = "error" if not valid else "warning" if warned else "valid"
    return verdict, [str(i) for i in issues if i.severity != "Info"]


def agrees(istio: str, lab: str) -> bool:
    if istio == "no-error":
        return lab != "error"
    return istio == lab
