"""details: Bookinfo's JSON record, the v2 difference, bad ids."""

from __future__ import annotations

import pytest

from services.details.app import create_app

BOOKINFO_DETAILS = {
    "id": 0,
    "author": "William Shakespeare",
    "year": 1595,
    "type": "paperback",
    "pages": 200,
    "publisher": "PublisherA",
    "language": "English",
    "ISBN-10": "1234567890",
    "ISBN-13": "123-1234567890",
}


def test_v1_is_bookinfo_record() -> None:
    response = create_app().test_client().get("/details/0")
    assert response.status_code == 200
    assert response.json == BOOKINFO_DETAILS
    assert list(response.json)[0] == "id"
    assert response.headers["x-served-by"] == "details-v1"


def test_v2_adds_a_visible_edition() -> None:
    response = create_app({"SERVICE_VERSION": "v2"}).test_client().get("/details/7")
    assert response.json == {
        **BOOKINFO_DETAILS,
        "id": 7,
        "publisher": "PublisherB",
        "edition": "2nd",
    }
    assert response.headers["x-served-by"] == "details-v2"


@pytest.mark.parametrize("product_id", ["abc", "1.5", "0x1"])
def test_bad_id_is_400(product_id: str) -> None:
    response = create_app().test_client().get(f"/details/{product_id}")
    assert response.status_code == 400
    assert response.json == {"error": "please provide numeric product id"}


def test_negative_id_is_numeric() -> None:
    assert create_app().test_client().get("/details/-3").json["id"] == -3


def test_health() -> None:
    response = create_app({"POD_NAME": "details-v1-0"}).test_client().get("/health")
    assert response.status_code == 200
    assert response.json == {
        "status": "Ready",
        "service": "details",
        "version": "v1",
        "pod": "details-v1-0",
    }


def test_unknown_path_is_404() -> None:
    assert create_app().test_client().get("/nope").status_code == 404
