"""productpage: page, login, API, degradation, x-served-by, the v2 canary.

Upstreams are the real details/reviews/ratings apps on loopback servers, or a ``Recorder``
where a test needs to see exactly what productpage sent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from services.details.app import create_app as details_app
from services.productpage.app import PRODUCTS, UNAVAILABLE, create_app
from services.ratings.app import create_app as ratings_app
from services.reviews.app import create_app as reviews_app
from tests.helpers import page_hops

DETAILS_UNAVAILABLE = "Sorry, product details are currently unavailable for this book."
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE = "Sorry, product ratings are currently unavailable for this book."


@pytest.fixture
def bookinfo(serve: Callable[[Any], str]) -> Callable[..., dict[str, str]]:
    """Start ratings, details and reviews; return productpage's upstream URL settings."""

    def start(details: str = "v1", reviews: str = "v2") -> dict[str, str]:
        ratings_url = serve(ratings_app())
        return {
            "RATINGS_URL": ratings_url,
            "DETAILS_URL": serve(details_app({"SERVICE_VERSION": details})),
            "REVIEWS_URL": serve(
                reviews_app({"SERVICE_VERSION": reviews, "RATINGS_URL": ratings_url})
            ),
        }

    return start


def banner(html: str) -> list[str]:
    block = re.search(r'<div class="served-by" id="served-by".*?</div>', html, re.S)
    assert block, "no served-by banner"
    return re.findall(r'<span class="hop-name">([^<]+)</span>', block.group(0))


def test_page_with_every_service(bookinfo) -> None:
    client = create_app(bookinfo()).test_client()
    response = client.get("/productpage")
    assert response.status_code == 200
    html = response.text
    assert PRODUCTS[0]["title"] in html
    assert "Book Details" in html and "PublisherA" in html
    assert "Book Reviews" in html and "Reviewer1" in html
    assert html.count("stars stars-black") == 2
    assert 'data-stars="5"' in html and 'data-stars="4"' in html
    expected = ["productpage-v1", "details-v1", "reviews-v2", "ratings-v1"]
    assert response.headers["x-served-by"] == ", ".join(expected)
    assert banner(html) == expected


def test_v1_reviews_have_no_stars_and_v3_red(bookinfo) -> None:
    html = create_app(bookinfo(reviews="v1")).test_client().get("/productpage").text
    assert "stars-" not in html and "Reviewer2" in html
    response = create_app(bookinfo(reviews="v3")).test_client().get("/productpage")
    assert response.text.count("stars stars-red") == 2
    assert response.headers["x-served-by"].endswith("reviews-v3, ratings-v1")


def test_details_v2_is_visible(bookinfo) -> None:
    response = create_app(bookinfo(details="v2")).test_client().get("/productpage")
    assert '<td id="edition">2nd</td>' in response.text
    assert "PublisherB" in response.text
    assert "details-v2" in response.headers["x-served-by"]


def test_v1_sets_no_cookie_and_v2_is_the_canary(bookinfo) -> None:
    urls = bookinfo()
    v1 = create_app(urls).test_client().get("/productpage")
    assert "Set-Cookie" not in v1.headers
    assert '<body class="productpage-v1">' in v1.text
    v2 = create_app({**urls, "SERVICE_VERSION": "v2"}).test_client()
    response = v2.get("/productpage")
    assert "product-page=v2; Path=/" in response.headers.getlist("Set-Cookie")
    assert '<body class="productpage-v2">' in response.text
    assert 'id="version-badge" title="productpage v2">v2</span>' in response.text
    assert banner(response.text)[0] == "productpage-v2"
    assert response.headers["x-served-by"].startswith("productpage-v2, details-v1")
    # The sticky cookie rides on every v2 response, API included.
    assert "product-page=v2" in v2.get("/api/v1/products").headers["Set-Cookie"]


def test_unavailable_texts_are_bookinfo_s() -> None:
    assert UNAVAILABLE == {
        "details": DETAILS_UNAVAILABLE,
        "reviews": REVIEWS_UNAVAILABLE,
        "ratings": RATINGS_UNAVAILABLE,
    }


def test_v2_stylesheet_differs() -> None:
    # A static file is streamed from disk: close the response.
    with create_app().test_client().get("/static/bookinfo.css") as css:
        assert css.status_code == 200
        assert "body.productpage-v2" in css.text


def test_login_sends_end_user_everywhere(recorder, serve) -> None:
    details, details_url = recorder(body={"id": 0}, headers={"x-served-by": "details-v1"})
    ratings, ratings_url = recorder(body={"id": 0, "ratings": {"Reviewer1": 1, "Reviewer2": 1}})
    reviews_url = serve(reviews_app({"SERVICE_VERSION": "v2", "RATINGS_URL": ratings_url}))
    client = create_app({"DETAILS_URL": details_url, "REVIEWS_URL": reviews_url}).test_client()

    client.get("/productpage")
    assert "end-user" not in details.seen[-1].headers

    response = client.post("/login", data={"username": "tester", "passwd": "anything"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/productpage"
    page = client.get("/productpage", headers={"x-request-id": "req-1"})
    assert '<span id="user">tester</span>' in page.text
    assert details.seen[-1].headers["end-user"] == "tester"
    assert details.seen[-1].headers["x-request-id"] == "req-1"
    # reviews propagates it on to ratings, so rules on ratings can match the user too.
    assert ratings.seen[-1].headers["end-user"] == "tester"
    assert ratings.seen[-1].headers["x-request-id"] == "req-1"

    assert client.get("/logout").status_code == 302
    page = client.get("/productpage")
    assert "tester" not in page.text and 'id="login-form"' in page.text
    assert "end-user" not in details.seen[-1].headers


def test_end_user_comes_from_the_session_only(recorder, serve) -> None:
    """Issue 11, finding 4: an anonymous ``curl -H 'end-user: tester'`` used to get the dark
    launch. As Istio's productpage, ``end-user`` is set from the logged-in user only."""
    details, details_url = recorder(body={"id": 0})
    ratings, ratings_url = recorder(body={"id": 0, "ratings": {"Reviewer1": 1, "Reviewer2": 1}})
    reviews_url = serve(reviews_app({"SERVICE_VERSION": "v2", "RATINGS_URL": ratings_url}))
    client = create_app({"DETAILS_URL": details_url, "REVIEWS_URL": reviews_url}).test_client()
    client.get("/productpage", headers={"end-user": "tester"})
    assert "end-user" not in details.seen[-1].headers
    assert "end-user" not in ratings.seen[-1].headers  # nor further down, via reviews
    client.post("/login", data={"username": "jason", "passwd": ""})
    client.get("/api/v1/products/0", headers={"end-user": "tester"})
    assert details.seen[-1].headers["end-user"] == "jason"


def test_empty_login_does_not_log_in() -> None:
    client = create_app().test_client()
    client.post("/login", data={"username": "  ", "passwd": ""})
    with client.session_transaction() as session:
        assert "user" not in session


def test_session_is_shared_across_instances(recorder) -> None:
    # Same SECRET_KEY everywhere: logged in on v1, still logged in when the canary answers.
    details, details_url = recorder(body={"id": 0})
    first = create_app({"DETAILS_URL": details_url}).test_client()
    first.post("/login", data={"username": "jason", "passwd": ""})
    second = create_app({"DETAILS_URL": details_url, "SERVICE_VERSION": "v2"}).test_client()
    second.set_cookie("session", first.get_cookie("session").value)
    second.get("/api/v1/products/0")
    assert details.seen[-1].headers["end-user"] == "jason"


def test_secret_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "s3")
    assert create_app().secret_key == "s3"


def test_everything_down_degrades_like_bookinfo(dead_url: str) -> None:
    urls = {"DETAILS_URL": dead_url, "REVIEWS_URL": dead_url, "RATINGS_URL": dead_url}
    client = create_app(urls).test_client()
    response = client.get("/productpage")
    assert response.status_code == 200
    assert "Error fetching product details" in response.text
    assert DETAILS_UNAVAILABLE in response.text
    assert "Error fetching product reviews" in response.text
    assert REVIEWS_UNAVAILABLE in response.text
    # A failed upstream contributes nothing.
    assert response.headers["x-served-by"] == "productpage-v1"
    # The page still names the hops that failed (in red, "✗ no answer"): no silent gap.
    assert banner(response.text) == ["productpage-v1", "details", "reviews"]
    for path, error in [
        ("/api/v1/products/0", DETAILS_UNAVAILABLE),
        ("/api/v1/products/0/reviews", REVIEWS_UNAVAILABLE),
        ("/api/v1/products/0/ratings", RATINGS_UNAVAILABLE),
    ]:
        api = client.get(path)
        assert (api.status_code, api.json) == (500, {"error": error}), path


def test_ratings_down_shows_ratings_error(serve, dead_url: str) -> None:
    reviews_url = serve(reviews_app({"SERVICE_VERSION": "v2", "RATINGS_URL": dead_url}))
    response = create_app({"REVIEWS_URL": reviews_url}).test_client().get("/productpage")
    assert response.text.count("Ratings service is currently unavailable") == 2
    assert "reviews-v2" in response.headers["x-served-by"]
    assert "ratings-v1" not in response.headers["x-served-by"]


def test_failing_details_instance(serve, bookinfo) -> None:
    urls = bookinfo()
    failing = serve(details_app({"SERVICE_VERSION": "v2", "FAIL_MODE": "503"}))
    client = create_app({**urls, "DETAILS_URL": failing}).test_client()
    response = client.get("/productpage")
    assert response.status_code == 200
    assert DETAILS_UNAVAILABLE in response.text
    assert "Book Reviews" in response.text
    # Its error response said who answered: the trainee sees which instance failed.
    assert response.headers["x-served-by"].startswith("productpage-v1, details-v2, reviews-v2")
    api = client.get("/api/v1/products/0")
    assert (api.status_code, api.json) == (503, {"error": DETAILS_UNAVAILABLE})


def test_reviews_tried_twice_then_upstream_status(recorder) -> None:
    reviews, url = recorder(status=503, body={"error": "down"})
    client = create_app({"REVIEWS_URL": url}).test_client()
    api = client.get("/api/v1/products/0/reviews")
    assert (api.status_code, api.json) == (503, {"error": REVIEWS_UNAVAILABLE})
    assert [seen.path for seen in reviews.seen] == ["/reviews/0", "/reviews/0"]
    page = client.get("/productpage")
    assert page.status_code == 200 and REVIEWS_UNAVAILABLE in page.text


def test_details_tried_once(recorder) -> None:
    details, url = recorder(status=503, body={})
    create_app({"DETAILS_URL": url}).test_client().get("/api/v1/products/0")
    assert len(details.seen) == 1


def test_reviews_attempts_configurable(recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWS_ATTEMPTS", "3")
    reviews, url = recorder(status=500, body={})
    create_app({"REVIEWS_URL": url}).test_client().get("/api/v1/products/0/reviews")
    assert len(reviews.seen) == 3


def test_reviews_timeout_twice_like_bookinfo(recorder) -> None:
    # Bookinfo's deliberate bug: 2 attempts x timeout, so a 7 s delay fails after ~6 s.
    reviews, url = recorder(body={"id": "0", "reviews": []}, delay=0.5)
    client = create_app({"REVIEWS_URL": url, "REVIEWS_TIMEOUT_SECONDS": 0.15}).test_client()
    start = time.monotonic()
    response = client.get("/productpage")
    elapsed = time.monotonic() - start
    assert REVIEWS_UNAVAILABLE in response.text
    assert len(reviews.seen) == 2
    assert 0.3 <= elapsed < 0.6


def test_details_timeout(recorder) -> None:
    _, url = recorder(body={"id": 0}, delay=0.5)
    client = create_app({"DETAILS_URL": url, "DETAILS_TIMEOUT_SECONDS": 0.1}).test_client()
    assert client.get("/api/v1/products/0").status_code == 500


def test_non_json_upstream_is_a_failure(recorder) -> None:
    _, url = recorder(body=None)
    api = create_app({"DETAILS_URL": url}).test_client().get("/api/v1/products/0")
    assert (api.status_code, api.json) == (500, {"error": DETAILS_UNAVAILABLE})


def test_api(bookinfo) -> None:
    client = create_app(bookinfo()).test_client()
    products = client.get("/api/v1/products")
    assert products.json == [
        {
            "id": 0,
            "title": "The Comedy of Errors",
            "descriptionHtml": PRODUCTS[0]["descriptionHtml"],
        }
    ]
    assert products.headers["x-served-by"] == "productpage-v1"
    product = client.get("/api/v1/products/0")
    assert product.json["author"] == "William Shakespeare"
    assert product.headers["x-served-by"] == "productpage-v1, details-v1"
    reviews = client.get("/api/v1/products/0/reviews")
    assert reviews.json["reviews"][0]["rating"] == {"stars": 5, "color": "black"}
    assert reviews.headers["x-served-by"] == "productpage-v1, reviews-v2, ratings-v1"
    ratings = client.get("/api/v1/products/0/ratings")
    assert ratings.json == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    bad = client.get("/api/v1/products/abc")
    assert (bad.status_code, bad.json) == (400, {"error": DETAILS_UNAVAILABLE})


def test_index_and_health() -> None:
    client = create_app({"DETAILS_URL": "http://details.example:9080"}).test_client()
    index = client.get("/")
    assert index.status_code == 200 and "http://details.example:9080" in index.text
    assert client.get("/index.html").status_code == 200
    health = client.get("/health")
    assert (health.status_code, health.json["service"]) == (200, "productpage")


def test_knobs_apply_to_productpage() -> None:
    client = create_app({"FAIL_MODE": "500"}).test_client()
    assert client.get("/productpage").status_code == 500
    assert client.get("/health").status_code == 200


def test_chain_shows_a_hop_the_callers_sidecar_failed_with_status_flag_and_time(recorder) -> None:
    # An injected abort: productpage's sidecar answers 503 itself, with the lab's flag header,
    # on both of Bookinfo's tries; the page names the hop, its status, the flag, the time.
    _, details_url = recorder(body={"id": 0}, headers={"x-served-by": "details-v1"})
    reviews, reviews_url = recorder(
        status=503, body=None, headers={"x-meshlab-response-flags": "FI"}
    )
    client = create_app({"DETAILS_URL": details_url, "REVIEWS_URL": reviews_url}).test_client()
    page = client.get("/productpage")
    hops = page_hops(page.text)
    assert hops[0].startswith("productpage-v1 ") and hops[0].endswith(" ms")
    assert re.fullmatch(r"details-v1 \d+ ms", hops[1]), hops
    assert re.fullmatch(r"reviews ✗ 503 FI \d+ ms \(retried after ✗ 503 FI\)", hops[2]), hops
    assert len(reviews.seen) == 2
    # x-served-by keeps its contract: only pods that answered.
    assert page.headers["x-served-by"] == "productpage-v1, details-v1"


def test_chain_shows_an_apps_error_without_a_flag_and_nested_hops_with_their_times(
    recorder, serve
) -> None:
    # details answers 503 itself (a FAIL_MODE instance: no sidecar flag); reviews v2 calls
    # ratings, whose time reviews measured and reports in server-timing.
    _, details_url = recorder(
        status=503, body={"error": "x"}, headers={"x-served-by": "details-v2"}
    )
    ratings, ratings_url = recorder(body={"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})
    ratings.delay = 0.05
    reviews_url = serve(reviews_app({"SERVICE_VERSION": "v2", "RATINGS_URL": ratings_url}))
    client = create_app({"DETAILS_URL": details_url, "REVIEWS_URL": reviews_url}).test_client()
    page = client.get("/productpage")
    hops = page_hops(page.text)
    assert re.fullmatch(r"details-v2 ✗ 503 \d+ ms", hops[1]), hops
    assert re.fullmatch(r"reviews-v2 \d+ ms", hops[2]), hops
    # The recorder names itself nothing: ratings' hop is named by the service called.
    nested = re.fullmatch(r"ratings (\d+) ms", hops[3])
    assert nested and int(nested.group(1)) >= 50, hops
    assert page.headers["x-served-by"] == "productpage-v1, details-v2, reviews-v2"
    assert "server-timing" in page.headers


def test_chain_says_no_answer_when_nothing_answered(dead_url: str) -> None:
    client = create_app({"DETAILS_URL": dead_url, "REVIEWS_URL": dead_url}).test_client()
    hops = page_hops(client.get("/productpage").text)
    assert re.fullmatch(r"details ✗ no answer \d+ ms", hops[1]), hops
    assert hops[2].startswith("reviews ✗ no answer"), hops


def test_both_versions_carry_an_equally_prominent_badge() -> None:
    for version in ("v1", "v2"):
        page = create_app({"SERVICE_VERSION": version}).test_client().get("/productpage").text
        assert f'class="badge badge-{version}" id="version-badge"' in page
    with create_app().test_client().get("/static/bookinfo.css") as css:
        rules = dict(re.findall(r"\.topbar \.badge-(v\d) \{([^}]*)\}", css.text))
    assert set(rules) == {"v1", "v2"}  # a colour each; size and weight from the shared .badge
    assert all("font-size" not in rule for rule in rules.values())
