"""VirtualService rule order, as Istio's analyzers read it: ``IST0130`` a rule no request can
reach (a catch-all or a covering prefix before it), ``IST0131`` a match that an earlier rule's
match already covers. Only the one resource is needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesh.config import issues as codes
from mesh.config.model import (
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
    TCPRoute,
    TLSRoute,
    VirtualService,
)
from mesh.config.validate.values import (
    Findings,
)

# ---------------------------------------------------------------- rule order (IST0130/IST0131)


@dataclass(frozen=True)
class _PrefixMatch:
    """Istio's OverlappingMatchValidationForHTTPRoute: a prefix match, flattened."""

    rule: str
    match: str
    prefix: str
    port: int
    method: str
    authority: str
    headers: Mapping[str, str]
    query_params: Mapping[str, str]
    without_headers: Mapping[str, str]


def _exact_or_prefix(match: StringMatch | None) -> str:
    if match is None:
        return ""
    if match.kind == "exact" and match.value:
        return "exact:" + match.value
    if match.kind == "prefix" and match.value:
        return "prefix:" + match.value
    return ""


def _rule_name(route: HTTPRoute, index: int) -> str:
    return f'"{route.name}"' if route.name else f"#{index}"


def _match_name(match: HTTPMatchRequest, index: int) -> str:
    return f'"{match.name}"' if match.name else f"#{index}"


def _prefix_match(
    route: HTTPRoute, index: int, match: HTTPMatchRequest, j: int
) -> _PrefixMatch | None:
    if match.uri is None or match.uri.kind != "prefix" or not match.uri.value:
        return None
    return _PrefixMatch(
        rule=_rule_name(route, index),
        match=_match_name(match, j),
        prefix=match.uri.value,
        port=match.port or 0,
        method=_exact_or_prefix(match.method) or "exact:GET",
        authority=_exact_or_prefix(match.authority),
        headers={k: _exact_or_prefix(v) for k, v in match.headers.items()},
        query_params={k: _exact_or_prefix(v) for k, v in match.query_params.items()},
        without_headers={k: _exact_or_prefix(v) for k, v in match.without_headers.items()},
    )


def _covers(first: _PrefixMatch, later: _PrefixMatch) -> bool:
    """Istio's coveredValidation: does the earlier prefix match catch the later one's?"""
    if not later.prefix.startswith(first.prefix) or later.port != first.port:
        return False
    if first.method != later.method and not first.method.startswith(later.method):
        return False
    if first.authority != later.authority and not first.authority.startswith(later.authority):
        return False
    for mine, theirs in (
        (first.headers, later.headers),
        (first.query_params, later.query_params),
        (first.without_headers, later.without_headers),
    ):
        if len(mine) != len(theirs):
            return False
        for key, value in mine.items():
            if key not in theirs:
                return False
            if value != theirs[key] and not value.startswith(theirs[key]):
                return False
    return True


def check_reachability(found: Findings, spec: VirtualService) -> None:
    """Istio's analyzeUnreachableHTTPRules (and the TCP/TLS ones): warnings."""

    def unreachable(path: str, rule: str, reason: str) -> None:
        found.warn(path, f"virtualService rule {rule} not used ({reason})", codes.UNREACHABLE_RULE)

    def ineffective(path: str, rule: str, match: str, duplicate: str) -> None:
        found.warn(
            path,
            f"virtualService rule {rule} match {match} is not used "
            f"(duplicate/overlapping match in rule {duplicate})",
            codes.INEFFECTIVE_MATCH,
        )

    prefixes: list[tuple[str, _PrefixMatch]] = []

    def http_first(path: str, i: int, j: int, match: HTTPMatchRequest) -> None:
        flattened = _prefix_match(spec.http[i], i, match, j)
        if flattened is not None:
            prefixes.append((path, flattened))

    _scan_rule_order(
        "http",
        spec.http,
        lambda match: repr(dataclasses.replace(match, name=None)),
        lambda i: _rule_name(spec.http[i], i),
        _match_name,
        unreachable,
        ineffective,
        http_first,
    )
    for a, (_, earlier) in enumerate(prefixes):
        for later_path, later in prefixes[a + 1 :]:
            if later.prefix == earlier.prefix:
                continue
            if _covers(earlier, later):
                ineffective(
                    later_path,
                    later.rule,
                    f"{later.match} of prefix {later.prefix}",
                    f"{earlier.match} of prefix {earlier.prefix} on {earlier.rule}",
                )
    for field_name, routes in (("tcp", spec.tcp), ("tls", spec.tls)):
        _scan_rule_order(
            field_name,
            routes,
            repr,
            lambda i: f"#{i}",
            lambda _m, j: f"#{j}",
            unreachable,
            ineffective,
        )


def _scan_rule_order(
    field_name: str,
    routes: Sequence[HTTPRoute | TCPRoute | TLSRoute],
    key_of: Callable[[Any], str],
    rule_name: Callable[[int], str],
    match_name: Callable[[Any, int], str],
    unreachable: Callable[[str, str, str], None],
    ineffective: Callable[[str, str, str, str], None],
    first_seen: Callable[[str, int, int, Any], None] | None = None,
) -> None:
    """Istio's analyzeUnreachable{HTTP,TCP,TLS}Rules: rules after a match-less one, and
    matches that repeat an earlier rule's."""
    seen: dict[str, int] = {}
    catch_all = -1
    for i, route in enumerate(routes):
        path, rule = f"{field_name}[{i}]", rule_name(i)
        if not route.match:
            if catch_all >= 0:
                unreachable(path, rule, "only the last rule can have no matches")
            catch_all = i
            continue
        duplicates = 0
        for j, match in enumerate(route.match):
            if catch_all >= 0:
                unreachable(path, rule, "route without matches defined before")
                continue
            key = key_of(match)
            if key in seen:
                ineffective(f"{path}.match[{j}]", rule, match_name(match, j), rule_name(seen[key]))
                duplicates += 1
                continue
            seen[key] = i
            if first_seen is not None:
                first_seen(f"{path}.match[{j}]", i, j, match)
        if duplicates == len(route.match):
            unreachable(path, rule, "all matches used by prior rules")
