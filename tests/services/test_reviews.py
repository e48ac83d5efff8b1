"""reviews: v1 without ratings, v2 black and v3 red stars, ratings failures, timeouts."""

from __future__ import annotations

import time

import pytest

from services.ratings.app import create_app as ratings_app
from services.reviews.app import REVIEWS, create_app

UNAVAILABLE = {"error": "Ratings service is currently unavailable"}


def test_v1_never_calls_ratings(recorder) -> None:
    rec, url = recorder(body={"id": 0, "ratings": {"Reviewer1": 1}})
    app = create_app({"RATINGS_URL": url, "POD_NAME": "reviews-v1-abc"})
    response = app.test_client().get("/reviews/0")
    assert response.status_code == 200
    assert response.json == {
        "id": "0",
        "podname": "reviews-v1-abc",
        "clustername": "null",
        "reviews": [{"reviewer": name, "text": text} for name, text in REVIEWS],
    }
    assert response.headers["x-served-by"] == "reviews-v1"
    assert rec.seen == []


@pytest.mark.parametrize(("version", "color"), [("v2", "black"), ("v3", "red")])
def test_stars_from_real_ratings(serve, version: str, color: str) -> None:
    ratings_url = serve(ratings_app())
    response = (
        create_app({"SERVICE_VERSION": version, "RATINGS_URL": ratings_url})
        .test_client()
        .get("/reviews/0")
    )
    assert response.status_code == 200
    ratings = [review["rating"] for review in response.json["reviews"]]
    assert ratings == [{"stars": 5, "color": color}, {"stars": 4, "color": color}]
    assert response.headers["x-served-by"] == f"reviews-{version}, ratings-v1"


def test_posted_ratings_show_up(serve) -> None:
    ratings = ratings_app()
    ratings.test_client().post("/ratings/0", json={"Reviewer1": 2, "Reviewer2": 3})
    client = create_app({"SERVICE_VERSION": "v2", "RATINGS_URL": serve(ratings)}).test_client()
    stars = [review["rating"]["stars"] for review in client.get("/reviews/0").json["reviews"]]
    assert stars == [2, 3]


@pytest.mark.parametrize("status", [500, 503, 404])
def test_ratings_error_status_keeps_200(recorder, status: int) -> None:
    _, url = recorder(status=status, body={"error": "x"}, headers={"x-served-by": "ratings-v1"})
    response = (
        create_app({"SERVICE_VERSION": "v3", "RATINGS_URL": url}).test_client().get("/reviews/0")
    )
    assert response.status_code == 200
    assert [review["rating"] for review in response.json["reviews"]] == [UNAVAILABLE] * 2
    # What the failed upstream's error response carried is still reported.
    assert response.headers["x-served-by"] == "reviews-v3, ratings-v1"


def test_ratings_down(dead_url: str) -> None:
    response = (
        create_app({"SERVICE_VERSION": "v2", "RATINGS_URL": dead_url})
        .test_client()
        .get("/reviews/0")
    )
    assert response.status_code == 200
    assert [review["rating"] for review in response.json["reviews"]] == [UNAVAILABLE] * 2
    assert response.headers["x-served-by"] == "reviews-v2"


def test_missing_reviewer_rating_is_an_error(recorder) -> None:
    _, url = recorder(body={"id": 0, "ratings": {"Reviewer2": 3}})
    response = (
        create_app({"SERVICE_VERSION": "v2", "RATINGS_URL": url}).test_client().get("/reviews/0")
    )
    ratings = [review["rating"] for review in response.json["reviews"]]
    assert ratings == [UNAVAILABLE, {"stars": 3, "color": "black"}]


def test_ratings_timeout(serve) -> None:
    slow_ratings = serve(ratings_app({"EXTRA_LATENCY_MS": 600}))
    app = create_app(
        {"SERVICE_VERSION": "v3", "RATINGS_URL": slow_ratings, "RATINGS_TIMEOUT_SECONDS": 0.2}
    )
    start = time.monotonic()
    response = app.test_client().get("/reviews/0")
    elapsed = time.monotonic() - start
    assert response.json["reviews"][0]["rating"] == UNAVAILABLE
    assert 0.2 <= elapsed < 0.55


def test_version_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_app({"SERVICE_VERSION": "v2"}).config["RATINGS_TIMEOUT_SECONDS"] == 10.0
    v3 = create_app({"SERVICE_VERSION": "v3"}).config
    assert (v3["RATINGS_TIMEOUT_SECONDS"], v3["STAR_COLOR"], v3["ENABLE_RATINGS"]) == (
        2.5,
        "red",
        True,
    )
    assert create_app().config["ENABLE_RATINGS"] is False
    monkeypatch.setenv("SERVICE_VERSION", "v3")
    monkeypatch.setenv("RATINGS_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("STAR_COLOR", "blue")
    cfg = create_app().config
    assert (cfg["RATINGS_TIMEOUT_SECONDS"], cfg["STAR_COLOR"]) == (1.5, "blue")
    monkeypatch.setenv("ENABLE_RATINGS", "false")
    assert create_app().config["ENABLE_RATINGS"] is False


def test_cluster_name_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTER_NAME", "lab")
    assert create_app().test_client().get("/reviews/0").json["clustername"] == "lab"


def test_non_numeric_id_is_404() -> None:
    assert create_app().test_client().get("/reviews/abc").status_code == 404


def test_end_user_reaches_ratings(recorder) -> None:
    rec, url = recorder(body={"id": 0, "ratings": {}})
    client = create_app({"SERVICE_VERSION": "v2", "RATINGS_URL": url}).test_client()
    client.get("/reviews/0", headers={"end-user": "jason"})
    assert rec.seen[0].headers["end-user"] == "jason"
