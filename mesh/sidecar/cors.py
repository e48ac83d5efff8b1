"""The route's ``corsPolicy``, applied as Envoy's CORS filter does.

- No ``Origin`` header, or an origin no ``allowOrigins`` entry matches: nothing is added.
- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an
  allowed origin is answered locally, 200, with the allow-* and max-age headers. A preflight
  from an origin that is not allowed is forwarded (``unmatchedPreflights: FORWARD``, the
  default) or answered 200 without CORS headers (``IGNORE``).
- Any other request from an allowed origin is forwarded; its response gets
  ``access-control-allow-origin`` (and credentials / expose-headers when configured).

Origin matchers are compiled once per policy object (the policy belongs to a compiled table,
so the cache is bounded by the number of distinct policies ever applied).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from mesh.routing.match import compile_string_match

Pairs = list[tuple[bytes, bytes]]


def _origin_is(allowed: str) -> Callable[[str], bool]:
    """The deprecated ``allowOrigin`` entry: one origin exactly, or ``*`` for any."""
    return lambda origin: allowed == "*" or origin == allowed


@lru_cache(maxsize=256)
def _origin_matchers(policy: Any) -> tuple[Callable[[str], bool], ...]:
    matchers = [compile_string_match(m) for m in policy.allow_origins]
    matchers += [_origin_is(v) for v in policy.allow_origin]
    return tuple(matchers)


def origin_allowed(policy: Any, origin: str) -> bool:
    return any(match(origin) for match in _origin_matchers(policy))


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return (
        method == "OPTIONS" and "origin" in headers and ("access-control-request-method" in headers)
    )


def preflight_reply(policy: Any, origin: str) -> Pairs:
    out: Pairs = [(b"access-control-allow-origin", origin.encode("latin-1"))]
    if policy.allow_methods:
        out.append((b"access-control-allow-methods", ",".join(policy.allow_methods).encode()))
    if policy.allow_headers:
        out.append((b"access-control-allow-headers", ",".join(policy.allow_headers).encode()))
    if policy.max_age is not None:
        out.append((b"access-control-max-age", str(int(policy.max_age)).encode()))
    if policy.allow_credentials:
        out.append((b"access-control-allow-credentials", b"true"))
    return out


def response_headers(policy: Any, origin: str) -> Pairs:
    out: Pairs = [(b"access-control-allow-origin", origin.encode("latin-1"))]
    if policy.allow_credentials:
        out.append((b"access-control-allow-credentials", b"true"))
    if policy.expose_headers:
        out.append((b"access-control-expose-headers", ",".join(policy.expose_headers).encode()))
    return out


def decide_preflight(policy: Any, method: str, headers: dict[str, str]) -> Pairs | None:
    """For a preflight this filter answers: the response headers (maybe empty, for IGNORE).
    None: not answered here, forward the request."""
    if not is_preflight(method, headers):
        return None
    origin = headers["origin"]
    if origin_allowed(policy, origin):
        return preflight_reply(policy, origin)
    if policy.unmatched_preflights == "IGNORE":
        return []
    return None
