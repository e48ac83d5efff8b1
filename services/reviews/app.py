"""Bookinfo reviews: ``GET /reviews/<id>`` -> two reviews, with stars from ratings in v2/v3.

One code base, three behaviours chosen by ``SERVICE_VERSION`` (as Bookinfo's one image with
``ENABLE_RATINGS``/``STAR_COLOR``): v1 never calls ratings (no stars); v2 calls it with a
10 s timeout and black stars; v3 with a 2.5 s timeout and red stars. A ratings failure keeps
the 200 and puts Bookinfo's error in place of the stars.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify

from services.common import fetch, forward_headers, init_service, load_settings

REVIEWS: tuple[tuple[str, str], ...] = (
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
        "plays by Shakespeare.",
    ),
)
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"

# Per-version defaults: (ratings enabled, star colour, ratings timeout in seconds).
VERSION_DEFAULTS: dict[str, tuple[bool, str, float]] = {
    "v1": (False, "black", 10.0),
    "v2": (True, "black", 10.0),
    "v3": (True, "red", 2.5),
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    init_service(app, "reviews", config, {"RATINGS_URL": "http://ratings:9080", "CLUSTER_NAME": ""})
    # These defaults depend on the version, so they are loaded once the version is known.
    enabled, color, timeout = VERSION_DEFAULTS.get(
        app.config["SERVICE_VERSION"], VERSION_DEFAULTS["v2"]
    )
    load_settings(
        app,
        {"ENABLE_RATINGS": enabled, "STAR_COLOR": color, "RATINGS_TIMEOUT_SECONDS": timeout},
        config,
    )

    @app.get("/reviews/<int:product_id>")
    def reviews(product_id: int) -> Any:
        cfg = current_app.config
        stars: dict[str, int] | None = None
        if cfg["ENABLE_RATINGS"]:
            reply = fetch(
                f"{cfg['RATINGS_URL']}/ratings/{product_id}",
                forward_headers(),
                float(cfg["RATINGS_TIMEOUT_SECONDS"]),
            )
            ratings = (
                reply.body.get("ratings") if reply.ok and isinstance(reply.body, dict) else None
            )
            stars = ratings if isinstance(ratings, dict) else {}
        items = []
        for reviewer, text in REVIEWS:
            item: dict[str, Any] = {"reviewer": reviewer, "text": text}
            if stars is not None:
                if isinstance(stars.get(reviewer), int):
                    item["rating"] = {"stars": stars[reviewer], "color": cfg["STAR_COLOR"]}
                else:
                    item["rating"] = {"error": RATINGS_UNAVAILABLE}
            items.append(item)
        return jsonify(
            id=str(product_id),
            podname=cfg["POD_NAME"],
            clustername=cfg["CLUSTER_NAME"] or "null",
            reviews=items,
        )

    return app
