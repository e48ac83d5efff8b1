"""x-served-by parsing and attribution of responses (loadtests.attribution)."""

from __future__ import annotations

import pytest

from loadtests.attribution import (
    REVIEWS_UNAVAILABLE,
    attribute,
    infer_flag,
    parse_served_by,
    split_entry,
    versions_of,
)

PAGE = ("details", "reviews")
FULL = "productpage-v2, details-v1, reviews-v2, ratings-v1"


@pytest.mark.parametrize(
    ("header", "chain"),
    [
        (FULL, ("productpage-v2", "details-v1", "reviews-v2", "ratings-v1")),
        ("productpage-v1,details-v1 ,reviews-v1", ("productpage-v1", "details-v1", "reviews-v1")),
        ("productpage-v1, , ", ("productpage-v1",)),
        ("", ()),
        (None, ()),
    ],
    ids=["full", "no-spaces", "empty-parts", "empty", "missing"],
)
def test_parse_served_by(header, chain):
    assert parse_served_by(header) == chain


@pytest.mark.parametrize(
    ("entry", "parts"),
    [
        ("reviews-v2", ("reviews", "v2")),
        ("my-service-v10", ("my-service", "v10")),
        ("reviews-unavailable", ("reviews-unavailable", "")),
        ("gateway", ("gateway", "")),
        ("-v1", ("-v1", "")),
    ],
)
def test_split_entry(entry, parts):
    assert split_entry(entry) == parts


def test_versions_of_keeps_the_first_appearance():
    assert versions_of(("productpage-v2", "reviews-v3", "reviews-v1")) == {
        "productpage": "v2",
        "reviews": "v3",
    }


def test_a_full_page_is_ok_and_names_every_version():
    result = attribute(200, {"x-served-by": FULL}, "<html>...</html>", 0.02, expects=PAGE)
    assert result.outcome == "ok" and not result.failed
    assert (result.productpage, result.details, result.reviews) == ("v2", "v1", "v2")
    assert result.labels() == ["productpage-v2", "details-v1", "reviews-v2", "ratings-v1"]


def test_an_aborted_reviews_call_degrades_the_page():
    # The sidecar's 503 FI never reaches reviews, so reviews-* is missing from the chain.
    headers = {"X-Served-By": "productpage-v1, details-v1"}
    body = f"<p>Error fetching product reviews! {REVIEWS_UNAVAILABLE} for this book.</p>"
    result = attribute(200, headers, body, 0.01, expects=PAGE)
    assert result.outcome == "reviews-unavailable" and result.failed
    assert result.flag == ""  # productpage answered: the flag stays in the sidecar's log
    assert "reviews-unavailable" in result.labels()


def test_missing_reviews_in_the_chain_is_enough_to_call_it_unavailable():
    result = attribute(200, {"x-served-by": "productpage-v1, details-v1"}, "", expects=PAGE)
    assert result.outcome == "reviews-unavailable"


def test_the_reviews_api_answers_the_upstream_status():
    body = '{"error": "Sorry, product reviews are currently unavailable for this book."}'
    result = attribute(503, {"x-served-by": "productpage-v1"}, body, expects=("reviews",))
    assert result.outcome == "reviews-unavailable"
    assert "status:503" in result.labels()


def test_a_failing_details_instance_names_itself_but_the_text_gives_it_away():
    headers = {"x-served-by": "productpage-v1, details-v2, reviews-v1"}
    body = "Sorry, product details are currently unavailable for this book."
    result = attribute(200, headers, body, expects=PAGE)
    assert result.outcome == "details-unavailable"
    assert result.details == "v2"


def test_an_app_error_without_degradation_text_is_an_error():
    result = attribute(500, {"x-served-by": "productpage-v1"}, "boom")
    assert result.outcome == "error"


@pytest.mark.parametrize(
    ("status", "headers", "body", "flag"),
    [
        (503, {}, "no healthy upstream", "UH"),
        (503, {}, "fault filter abort", "FI"),
        (
            503,
            {"x-envoy-overloaded": "true"},
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            "UO",
        ),
        (
            503,
            {},
            "upstream connect error or disconnect/reset before headers. reset reason: "
            "connection failure",
            "UF",
        ),
        (504, {}, "upstream request timeout", "UT"),
        (404, {}, "", "NR"),
        (503, {}, "", "NC"),
        (503, {"x-envoy-response-flags": "URX,UF"}, "whatever", "URX,UF"),
        (503, {"x-served-by": "productpage-v1"}, "no healthy upstream", ""),
        (418, {}, "teapot", ""),
    ],
    ids=["UH", "FI", "UO", "UF", "UT", "NR", "NC", "header", "app-answered", "unknown"],
)
def test_infer_flag(status, headers, body, flag):
    assert infer_flag(status, headers, body) == flag


def test_a_gateway_local_reply_is_attributed_to_the_gateway():
    result = attribute(503, {"content-type": "text/plain"}, "no healthy upstream", expects=PAGE)
    assert result.outcome == "local-reply"
    assert result.flag == "UH"
    assert result.chain == () and result.productpage == ""
    assert result.labels() == ["local-reply", "flag:UH", "status:503"]


def test_a_local_reply_we_cannot_name_is_an_error():
    assert attribute(502, {}, "bad gateway from somewhere").outcome == "error"


def test_no_response_at_all():
    result = attribute(0, {}, "", 20.0)
    assert result.outcome == "error" and result.slow
    assert "status:0" in result.labels()


def test_slow_is_a_label_not_a_failure():
    result = attribute(200, {"x-served-by": FULL}, "", 2.55, expects=PAGE)
    assert result.slow and not result.failed
    assert result.labels()[-1] == "slow"
    assert not attribute(200, {"x-served-by": FULL}, "", 0.5, expects=PAGE).slow
