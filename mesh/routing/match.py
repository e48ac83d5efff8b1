"""Request matchers, compiled once per config: ``compile_string_match`` and ``RequestMatcher``.

Istio semantics: conditions inside one ``HTTPMatchRequest`` are ANDed; ``regex`` is RE2 and
must match the whole value (Lab decision 5); ``{}`` means presence; ``withoutHeaders``
inverts, treating an absent header as empty; ``ignoreUriCase`` makes only uri exact/prefix
case-insensitive; ``uri`` sees the path without its query string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import re2

from mesh.config.model import HTTPMatchRequest, StringMatch
from mesh.routing.decision import RequestView

ValuePredicate = Callable[[str], bool]


def compile_regex(pattern: str) -> re2._Regexp:
    """Compile an RE2 pattern (raises ``re2.error`` with RE2's reason)."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


def compile_string_match(match: StringMatch, ignore_case: bool = False) -> ValuePredicate:
    """A predicate on a present value. Presence (``kind`` None) accepts anything."""
    value = match.value
    if match.kind is None:
        return lambda _v: True
    if match.kind == "exact":
        if ignore_case:
            lowered = value.lower()
            return lambda v: v.lower() == lowered
        return value.__eq__
    if match.kind == "prefix":
        if ignore_case:
            lowered = value.lower()
            return lambda v: v.lower().startswith(lowered)
        return lambda v: v.startswith(value)
    fullmatch = compile_regex(value).fullmatch
    return lambda v: fullmatch(v) is not None


def split_path(target: str) -> tuple[str, str]:
    """Request target → (path, query) with the query's ``?`` removed."""
    path, _, query = target.partition("?")
    return path, query


@dataclass(frozen=True, slots=True)
class RequestMatcher:
    """One compiled ``HTTPMatchRequest``: every condition must hold."""

    conditions: tuple[Callable[[RequestView, str, Mapping[str, str] | None], bool], ...]
    uses_query: bool
    uri_prefix: str | None  # for ``rewrite.uri`` on a prefix match
    uri_prefix_ignore_case: bool = False

    def matches(self, request: RequestView, path: str) -> bool:
        query = (
            dict(parse_qsl(request.path.partition("?")[2], keep_blank_values=True))
            if self.uses_query
            else None
        )
        for condition in self.conditions:
            if not condition(request, path, query):
                return False
        return True


def compile_match(match: HTTPMatchRequest) -> RequestMatcher:
    """Compile one match entry; ``sourceLabels``/``gateways`` are applied at compile time."""
    conditions: list[Callable[[RequestView, str, Mapping[str, str] | None], bool]] = []
    ignore_case = bool(match.ignore_uri_case)
    if match.uri is not None:
        uri_ok = compile_string_match(match.uri, ignore_case and match.uri.kind != "regex")
        conditions.append(lambda r, p, q: uri_ok(p))
    if match.scheme is not None:
        scheme_ok = compile_string_match(match.scheme)
        conditions.append(lambda r, p, q: scheme_ok(r.scheme))
    if match.method is not None:
        method_ok = compile_string_match(match.method)
        conditions.append(lambda r, p, q: method_ok(r.method))
    if match.authority is not None:
        authority_ok = compile_string_match(match.authority)
        conditions.append(lambda r, p, q: authority_ok(r.host))
    if match.port is not None:
        wanted_port = match.port
        conditions.append(lambda r, p, q: r.port == wanted_port)
    for raw_name, header_match in match.headers.items():
        conditions.append(_header_condition(raw_name.lower(), header_match))
    for raw_name, header_match in match.without_headers.items():
        conditions.append(_without_header_condition(raw_name.lower(), header_match))
    for param, param_match in match.query_params.items():
        conditions.append(_query_condition(param, param_match))
    uri_prefix = match.uri.value if match.uri is not None and match.uri.kind == "prefix" else None
    return RequestMatcher(tuple(conditions), bool(match.query_params), uri_prefix, ignore_case)


def _header_condition(
    name: str, header_match: StringMatch
) -> Callable[[RequestView, str, Mapping[str, str] | None], bool]:
    value_ok = compile_string_match(header_match)

    def condition(r: RequestView, p: str, q: Mapping[str, str] | None) -> bool:
        value = r.headers.get(name)
        return value is not None and value_ok(value)

    return condition


def _without_header_condition(
    name: str, header_match: StringMatch
) -> Callable[[RequestView, str, Mapping[str, str] | None], bool]:
    if header_match.kind == "regex" and header_match.value == "*":
        # Istio special case: withoutHeaders {regex: "*"} means "header absent".
        return lambda r, p, q: name not in r.headers
    if header_match.kind is None:
        return lambda r, p, q: name not in r.headers
    value_ok = compile_string_match(header_match)
    return lambda r, p, q: not value_ok(r.headers.get(name, ""))


def _query_condition(
    param: str, param_match: StringMatch
) -> Callable[[RequestView, str, Mapping[str, str] | None], bool]:
    value_ok = compile_string_match(param_match)

    def condition(r: RequestView, p: str, q: Mapping[str, str] | None) -> bool:
        value = q.get(param) if q is not None else None
        return value is not None and value_ok(value)

    return condition
