"""ratings: GET defaults, POST stores per app instance, validation."""

from __future__ import annotations

import pytest

from services.ratings.app import create_app


def test_get_defaults() -> None:
    response = create_app().test_client().get("/ratings/0")
    assert response.status_code == 200
    assert response.json == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    assert response.headers["x-served-by"] == "ratings-v1"


def test_post_stores_in_this_instance_only() -> None:
    client = create_app().test_client()
    posted = client.post("/ratings/3", json={"Reviewer1": 1, "Reviewer2": 2})
    assert posted.status_code == 200
    assert posted.json == {"id": 3, "ratings": {"Reviewer1": 1, "Reviewer2": 2}}
    assert client.get("/ratings/3").json["ratings"] == {"Reviewer1": 1, "Reviewer2": 2}
    assert client.get("/ratings/0").json["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}
    # No module-level state: a second app (another pod) still has the defaults.
    other = create_app().test_client()
    assert other.get("/ratings/3").json["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}


@pytest.mark.parametrize(
    "body",
    [None, [], {}, {"Reviewer1": 6}, {"Reviewer1": 0}, {"Reviewer1": "5"}, {"Reviewer1": True}],
)
def test_post_rejects_invalid_ratings(body: object) -> None:
    client = create_app().test_client()
    response = (
        client.post("/ratings/0", data="not json", content_type="application/json")
        if body is None
        else client.post("/ratings/0", json=body)
    )
    assert response.status_code == 400
    assert response.json == {"error": "please provide valid ratings JSON"}
    assert client.get("/ratings/0").json["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}


@pytest.mark.parametrize("method", ["get", "post"])
def test_bad_id_is_400(method: str) -> None:
    response = getattr(create_app().test_client(), method)("/ratings/abc")
    assert response.status_code == 400
    assert response.json == {"error": "please provide numeric product ID"}


def test_health() -> None:
    assert create_app().test_client().get("/health").json["service"] == "ratings"
