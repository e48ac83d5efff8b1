"""Builders shared by the tests: YAML for resources, loading and compiling in one call."""

from __future__ import annotations

import random
import textwrap

from mesh.config.loader import LoadResult, load_text
from mesh.config.validate import analyze
from mesh.routing import ProxyIdentity, RequestView, compile_config, decide
from mesh.routing.table import RouteTable
from mesh.snapshot import Endpoint

HEADER = "apiVersion: networking.istio.io/v1beta1\n"


def doc(kind: str, name: str, spec: str) -> str:
    """One YAML document; ``spec`` is the indented body under ``spec:``."""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return f"{HEADER}kind: {kind}\nmetadata:\n  name: {name}\nspec:\n{body}\n"


def docs(*documents: str) -> str:
    return "---\n".join(documents)


def load(text: str) -> LoadResult:
    return load_text(text, "test.yaml")


def findings(text: str, endpoints: list[Endpoint] | None = None) -> list[str]:
    """Every finding as 'Severity CODE path: message' strings (loader + analyzer)."""
    loaded = load(text)
    found = loaded.issues + analyze(loaded.resources, endpoints)
    return [f"{i.severity} {i.code} {i.path}: {i.message}" for i in found]


def pods(*specs: str) -> list[Endpoint]:
    """``pods("reviews:v1", "reviews:v2")`` → endpoints on distinct loopback ports."""
    endpoints = []
    for n, spec in enumerate(specs):
        service, _, version = spec.partition(":")
        endpoints.append(
            Endpoint(
                f"{service}-{version}-{n}",
                service,
                "127.0.0.1",
                20000 + n,
                {"app": service, "version": version},
            )
        )
    return endpoints


BOOKINFO_RULES = docs(
    doc(
        "DestinationRule",
        "reviews",
        """
        host: reviews
        subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
        - {name: v3, labels: {version: v3}}
    """,
    ),
    doc(
        "DestinationRule",
        "productpage",
        """
        host: productpage
        subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
    """,
    ),
)
BOOKINFO_PODS = pods(
    "reviews:v1",
    "reviews:v2",
    "reviews:v3",
    "productpage:v1",
    "productpage:v2",
    "details:v1",
    "ratings:v1",
)


def table(
    text: str, proxy: ProxyIdentity | None = None, endpoints: list[Endpoint] | None = None
) -> RouteTable:
    loaded = load(text)
    errors = [i for i in loaded.issues if i.is_error]
    assert not errors, errors
    return compile_config(
        loaded.resources,
        BOOKINFO_PODS if endpoints is None else endpoints,
        proxy or ProxyIdentity("test", {"app": "productpage", "version": "v1"}),
        services=("productpage", "details", "reviews", "ratings"),
    )


def route(rt: RouteTable, host: str = "reviews", seed: int = 7, **request: object):
    return decide(rt, RequestView(host=host, **request), random.Random(seed))  # type: ignore[arg-type]
