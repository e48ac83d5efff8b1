"""Request path normalisation before matching, as Istio's default (``PathNormalization``
``DEFAULT``, i.e. Envoy's ``normalize_path: true``, ``merge_slashes: false``, escaped slashes
kept unchanged). Pure functions on strings.

Primitives:

- ``needs_normalizing(target)``: a cheap test (a few substring searches), true when
  ``normalize_path`` could change a target as llhttp delivers it (a dot segment, a
  backslash, a percent escape, no leading ``/``, a byte beyond ASCII). The request path pays
  only this test in the common case.
- ``normalize_path(target)``: the canonical target (query kept as sent), or ``None`` for a
  path Envoy refuses with 400 (an escaped NUL).

The canonical form is the one Envoy computes with Chromium's URL path canonicaliser:
``\\`` is a ``/``; ``.`` and ``..`` segments are resolved per RFC 3986 section 5.2.4 (``%2e``
counts as a dot), never above the root; an escape of an unreserved character (``%41``,
``%7e``, ``%2E``) is decoded, any other escape is kept as sent (``%2F``, ``%5c``, case
preserved); a ``%`` not followed by two hex digits stays as it is; empty segments (``//``)
stay. Space, control characters and bytes >= 0x80 are escaped (``%XX``; llhttp refuses them
in a request line anyway). One deviation, for a cheap test: Chromium also escapes the
characters " < > ` { }, which llhttp lets through; here they stay as sent.
The target is the request line's, a ``str`` of its bytes (latin-1).
"""

from __future__ import annotations

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPED = frozenset(" \x7f") | frozenset(chr(c) for c in range(0x20))


def needs_normalizing(target: str) -> bool:
    """True when ``normalize_path(target)`` may differ from ``target`` (a target with no
    space or control character, as llhttp delivers it)."""
    return (
        "%" in target
        or "/." in target
        or "\\" in target
        or target[:1] != "/"
        or not target.isascii()
    )


def normalize_path(target: str) -> str | None:
    """The canonical form of ``target`` (path, then the query as sent), or ``None`` when it
    cannot be canonicalised (an escaped NUL), which Envoy answers with 400."""
    if target == "*":  # OPTIONS * has no path to normalise
        return target
    path, mark, query = target.partition("?")
    chars: list[str] = []
    i = 0
    n = len(path)
    while i < n:
        c = path[i]
        if c == "%":
            pair = path[i + 1 : i + 3]
            if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                value = int(pair, 16)
                if value == 0:
                    return None
                decoded = chr(value)
                chars.append(decoded if decoded in _UNRESERVED else "%" + pair)
                i += 3
                continue
            chars.append("%")
        elif c == "\\":
            chars.append("/")
        elif c in _ESCAPED or c >= "\x80":
            chars.append(f"%{ord(c):02X}")
        else:
            chars.append(c)
        i += 1
    canonical = _remove_dot_segments("".join(chars))
    return canonical + mark + query


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 on an absolute path (a relative one is made absolute first)."""
    segments = path.split("/")
    if segments[0] != "":  # "a/b" is "/a/b"
        segments.insert(0, "")
    out: list[str] = [""]
    last = len(segments) - 1
    for index, segment in enumerate(segments[1:], start=1):
        if segment == ".":
            if index == last:
                out.append("")  # "/a/." is "/a/"
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if index == last:
                out.append("")  # "/a/b/.." is "/a/"
        else:
            out.append(segment)
    if len(out) == 1:
        return "/"
    return "/".join(out)
