"""Path normalisation as Istio's default (Envoy ``normalize_path``), from plain values.

The cases are Envoy's own (test/common/http/path_utility_test.cc) plus the lab's report
(``/static/../productpage``) and the escapes Chromium's canonicaliser applies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesh.routing.paths import needs_normalizing, normalize_path


@pytest.mark.parametrize(
    ("target", "canonical"),
    [
        ("/static/../productpage", "/productpage"),
        ("/a/b/../c", "/a/c"),
        ("/a/b/./c", "/a/b/c"),
        ("a/b/../c", "/a/c"),
        ("/a/b/../../../../c", "/c"),
        ("/a/..\\c", "/c"),
        ("/%c0%af", "/%c0%af"),
        ("/%5c%25", "/%5c%25"),
        ("/a/b/%2E%2E/c", "/a/c"),
        ("/a/b/%2e%2e/c", "/a/c"),
        ("/a/b/%2E./c", "/a/c"),
        ("/a/b/%2E/c", "/a/b/c"),
        ("..", "/"),
        ("/../a/b", "/a/b"),
        ("/./a/b", "/a/b"),
        ("/A/B/C", "/A/B/C"),
        ("/a/%2F%2f/c", "/a/%2F%2f/c"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
        ("/a//b", "/a//b"),  # merge_slashes is off in Istio's DEFAULT
        ("/%41%7e%2d", "/A~-"),  # unreserved escapes are decoded
        ("/a%", "/a%"),  # not an escape: kept
        ("/a%zz", "/a%zz"),
        ("/a b\x01\xe9", "/a%20b%01%E9"),
        ('/a"<>`{}', '/a"<>`{}'),  # Chromium escapes these; the lab keeps them (paths.py)
        ("/x/../y?next=/../z&q=%2e%2e", "/y?next=/../z&q=%2e%2e"),  # the query as sent
        ("*", "*"),
    ],
)
def test_envoy_canonical_paths(target: str, canonical: str) -> None:
    assert normalize_path(target) == canonical
    assert needs_normalizing(target) or target == canonical or " " in target


@pytest.mark.parametrize("target", ["/xyz/.%00../abc", "/xyz/%00.%00./abc", "/xyz/AAAAA%%0000/abc"])
def test_an_escaped_nul_is_refused(target: str) -> None:
    assert normalize_path(target) is None


@pytest.mark.parametrize("target", ["/", "/productpage", "/api/v1/products/0?x=1&y=/a", "/a//b"])
def test_canonical_paths_skip_the_work(target: str) -> None:
    assert not needs_normalizing(target)
    assert normalize_path(target) == target


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40))
def test_normalising_is_idempotent_and_the_cheap_test_is_sound(raw: str) -> None:
    target = "/" + raw
    canonical = normalize_path(target)
    if canonical is None:
        return
    assert normalize_path(canonical) == canonical
    assert canonical.startswith("/")
    path = canonical.partition("?")[0]
    assert "/./" not in path + "/" and "/../" not in path + "/"
    if not needs_normalizing(target):
        assert canonical == target
