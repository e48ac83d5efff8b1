"""VirtualService delegation, as Istio merges it (pilot/pkg/model/virtualservice.go): a root
VirtualService's ``http[]`` rule with ``delegate: {name, namespace}`` is replaced by the
delegate VirtualService's rules, each merged with the root rule.

Primitives: ``merge_delegates(resources)`` (the resources with every root's delegating rules
expanded and the delegates themselves, which have no hosts, left out), ``merge_route`` and
``merge_matches`` (one root rule with one delegate rule; None or a conflict when the
delegate's match is not within the root's). Pure: resources in, resources out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from mesh.config.model import HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService
from mesh.config.resource import Resource

# The HTTPRoute fields a delegate rule inherits from its root rule when it leaves them unset.
INHERITED = (
    "rewrite",
    "direct_response",
    "timeout",
    "retries",
    "fault",
    "mirror",
    "mirror_percent",
    "mirror_percentage",
    "cors_policy",
    "headers",
)


def merge_delegates(resources: Sequence[Resource]) -> list[Resource]:
    """Expand delegating rules; delegates (VirtualServices without hosts) are consumed."""
    delegates = {
        (r.namespace, r.name): r.spec
        for r in resources
        if r.kind == "VirtualService" and not r.spec.hosts
    }
    out: list[Resource] = []
    for resource in resources:
        if resource.kind != "VirtualService":
            out.append(resource)
            continue
        spec: VirtualService = resource.spec
        if not spec.hosts:
            continue
        if not any(route.delegate is not None for route in spec.http):
            out.append(resource)
            continue
        rules: list[HTTPRoute] = []
        for route in spec.http:
            if route.delegate is None:
                rules.append(route)
                continue
            key = (route.delegate.namespace or resource.namespace, route.delegate.name or "")
            delegate = delegates.get(key)
            if delegate is None:
                continue  # Istio drops a rule whose delegate does not exist
            for sub in delegate.http:
                merged = merge_route(route, sub)
                if merged is not None:
                    rules.append(merged)
        out.append(dataclasses.replace(resource, spec=dataclasses.replace(spec, http=tuple(rules))))
    return out


def merge_route(root: HTTPRoute, delegate: HTTPRoute) -> HTTPRoute | None:
    matches = merge_matches(root.match, delegate.match)
    if matches is None:
        return None  # the delegate rule matches outside its root: Istio ignores it
    changes: dict[str, object] = {"match": matches, "name": _joined(root.name, delegate.name)}
    for name in INHERITED:
        if getattr(delegate, name) is None:
            changes[name] = getattr(root, name)
    if not delegate.mirrors:
        changes["mirrors"] = root.mirrors
    return dataclasses.replace(delegate, **changes)  # type: ignore[arg-type]


def merge_matches(
    root: Sequence[HTTPMatchRequest], delegate: Sequence[HTTPMatchRequest]
) -> tuple[HTTPMatchRequest, ...] | None:
    """Each delegate match combined with every root match it does not conflict with; None
    when one fits none."""
    if not root:
        return tuple(delegate)
    if not delegate:
        return tuple(root)
    out: list[HTTPMatchRequest] = []
    for sub in delegate:
        fitting = [_merge_match(parent, sub) for parent in root if not _conflict(parent, sub)]
        if not fitting:
            return None
        out.extend(fitting)
    return tuple(out) or None


def _joined(root: str | None, delegate: str | None) -> str | None:
    if not delegate:
        return root
    return f"{root}-{delegate}" if root else delegate


def _merge_match(root: HTTPMatchRequest, leaf: HTTPMatchRequest) -> HTTPMatchRequest:
    return dataclasses.replace(
        leaf,
        name=_joined(root.name, leaf.name),
        uri=leaf.uri or root.uri,
        scheme=leaf.scheme or root.scheme,
        method=leaf.method or root.method,
        authority=leaf.authority or root.authority,
        headers={**root.headers, **leaf.headers},
        without_headers={**root.without_headers, **leaf.without_headers},
        query_params={**root.query_params, **leaf.query_params},
        port=leaf.port or root.port,
        source_labels={**root.source_labels, **leaf.source_labels},
        source_namespace=leaf.source_namespace or root.source_namespace,
        gateways=leaf.gateways or root.gateways,
        stat_prefix=leaf.stat_prefix or root.stat_prefix,
    )


def _conflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest) -> bool:
    """Istio's hasConflict: is the leaf match not within the root's?"""
    for mine, theirs in (
        (root.uri, leaf.uri),
        (root.scheme, leaf.scheme),
        (root.method, leaf.method),
        (root.authority, leaf.authority),
    ):
        if _string_conflict(mine, theirs):
            return True
    for parent, child in (
        (root.headers, leaf.headers),
        (root.without_headers, leaf.without_headers),
        (root.query_params, leaf.query_params),
    ):
        if any(_string_conflict(parent.get(key), value) for key, value in child.items()):
            return True
    if bool(root.ignore_uri_case) != bool(leaf.ignore_uri_case):
        return True
    if root.port and leaf.port and root.port != leaf.port:
        return True
    if root.source_namespace and leaf.source_namespace != root.source_namespace:
        return True
    if any(root.source_labels.get(k, v) != v for k, v in leaf.source_labels.items()):
        return True
    if root.gateways and leaf.gateways:
        if len(root.gateways) < len(leaf.gateways) or not set(leaf.gateways) <= set(root.gateways):
            return True
    return False


def _string_conflict(root: StringMatch | None, leaf: StringMatch | None) -> bool:
    """Istio's stringMatchConflict (a presence match counts as no match type)."""
    if root is None or leaf is None:
        return False
    root_value = root.value if root.kind else ""
    leaf_value = leaf.value if leaf.kind else ""
    if root.kind == "regex" and root_value and leaf_value:
        return True
    if leaf.kind == "regex" and leaf_value and root_value:
        return True
    if root.kind == "exact" and root_value:
        if leaf.kind == "prefix" and leaf_value:
            return True
        return not (leaf.kind == "exact" and leaf_value == root_value)
    if root.kind == "prefix" and root_value:
        if leaf.kind in ("prefix", "exact") and leaf_value:
            return not leaf_value.startswith(root_value)
    return True
