"""Bookinfo ratings: ``GET /ratings/<id>`` reads, ``POST /ratings/<id>`` stores, in memory.

The store is one dict per app instance (in ``app.extensions``), so two pods, or two tests,
never share ratings; gunicorn's threads share it under a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, jsonify, request

from services.common import init_service

DEFAULT_RATINGS: dict[str, int] = {"Reviewer1": 5, "Reviewer2": 4}


@dataclass
class RatingsStore:
    """Ratings posted at runtime, by product id; other products get Bookinfo's defaults."""

    by_product: dict[int, dict[str, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, product_id: int) -> dict[str, int]:
        with self.lock:
            return dict(self.by_product.get(product_id, DEFAULT_RATINGS))

    def put(self, product_id: int, ratings: dict[str, int]) -> dict[str, int]:
        with self.lock:
            self.by_product[product_id] = dict(ratings)
            return dict(ratings)


def _valid_ratings(body: Any) -> bool:
    """A JSON object of reviewer -> 1..5 stars (bool is an int in Python; refuse it)."""
    return (
        isinstance(body, dict)
        and bool(body)
        and all(
            isinstance(name, str) and type(stars) is int and 1 <= stars <= 5
            for name, stars in body.items()
        )
    )


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    init_service(app, "ratings", config, {})
    app.extensions["ratings_store"] = RatingsStore()

    @app.route("/ratings/<product_id>", methods=["GET", "POST"])
    def ratings(product_id: str) -> Any:
        try:
            numeric_id = int(product_id)
        except ValueError:
            return jsonify(error="please provide numeric product ID"), 400
        store: RatingsStore = current_app.extensions["ratings_store"]
        if request.method == "GET":
            return jsonify(id=numeric_id, ratings=store.get(numeric_id))
        body = request.get_json(silent=True)
        if not _valid_ratings(body):
            return jsonify(error="please provide valid ratings JSON"), 400
        return jsonify(id=numeric_id, ratings=store.put(numeric_id, body))

    return app
