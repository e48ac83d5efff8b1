"""Bookinfo details: ``GET /details/<id>`` -> the book's details as JSON.

v1 answers Bookinfo's record; v2 adds a second edition from a newer publisher, which the
product page shows, so a rollout of details v2 is visible to the trainee.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from services.common import init_service

# Bookinfo's details (Ruby) record, with the product id filled in per request.
DETAILS_V1: dict[str, Any] = {
    "author": "William Shakespeare",
    "year": 1595,
    "type": "paperback",
    "pages": 200,
    "publisher": "PublisherA",
    "language": "English",
    "ISBN-10": "1234567890",
    "ISBN-13": "123-1234567890",
}
DETAILS_V2: dict[str, Any] = {**DETAILS_V1, "publisher": "PublisherB", "edition": "2nd"}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    init_service(app, "details", config, {})
    record = DETAILS_V1 if app.config["SERVICE_VERSION"] == "v1" else DETAILS_V2

    @app.get("/details/<product_id>")
    def details(product_id: str) -> Any:
        # Ruby's Integer(): "0" and "-3" are ids, "abc" and "1.5" are not.
        try:
            numeric_id = int(product_id)
        except ValueError:
            return jsonify(error="please provide numeric product id"), 400
        return jsonify(id=numeric_id, **record)

    return app
