"""Matchers from plain values: string matches, a match entry's conditions, regex sets."""

from __future__ import annotations

import pytest

from mesh.config.model import HTTPMatchRequest, StringMatch
from mesh.routing.decision import RequestView
from mesh.routing.match import HeaderRegexSets, compile_match, compile_string_match, split_path


@pytest.mark.parametrize(
    ("match", "value", "expected"),
    [
        (StringMatch("exact", "v2"), "v2", True),
        (StringMatch("exact", "v2"), "v22", False),
        (StringMatch("prefix", "/api"), "/api/x", True),
        (StringMatch("regex", "v[12]"), "v1", True),
        (StringMatch("regex", "v[12]"), "xv1", False),  # RE2 full match, as Envoy
        (StringMatch(), "anything", True),  # {} = presence
    ],
)
def test_string_match(match: StringMatch, value: str, expected: bool) -> None:
    assert compile_string_match(match)(value) is expected


def test_a_match_entry_ands_its_conditions_and_names_the_headers_it_needs() -> None:
    matcher = compile_match(
        HTTPMatchRequest(
            uri=StringMatch("prefix", "/reviews"),
            method=StringMatch("exact", "GET"),
            headers={"End-User": StringMatch("exact", "tester")},
        )
    )
    request = RequestView("reviews", "/reviews/1", headers={"end-user": "tester"})
    assert matcher.required == {"end-user"} and matcher.uri_prefix == "/reviews"
    assert matcher.matches(request, "/reviews/1")
    assert not matcher.matches(
        RequestView("reviews", "/reviews/1", "POST", {"end-user": "tester"}), "/reviews/1"
    )
    assert not matcher.matches(request, "/ratings/1")


def test_header_regexes_of_a_table_share_one_set_per_header() -> None:
    sets = HeaderRegexSets()
    first = sets.register("cookie", "^(.*?;)?(a=1)(;.*)?$")
    second = sets.register("cookie", "b=.*")
    assert sets.register("cookie", "b=.*") == second != first
    sets.build()
    assert sets.matches("cookie", "x=0;a=1") == {first}
    assert sets.matches("cookie", "b=7") == {second}


def test_split_path() -> None:
    assert split_path("/a/b?x=1&y") == ("/a/b", "x=1&y")
    assert split_path("/a") == ("/a", "")
