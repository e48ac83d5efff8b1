"""Bookinfo productpage: the page a trainee opens, and Bookinfo's product API.

Routes as Bookinfo's productpage.py: ``/`` (index), ``/productpage``, ``POST /login``,
``GET /logout``, ``/api/v1/products[/<id>[/reviews|/ratings]]``, plus ``/health`` from
``services.common``. The page calls details (3 s) then reviews (3 s, two attempts: Bookinfo's
deliberate bug the fault-injection task relies on) and never answers a 500 page: a failed
upstream shows Bookinfo's "Sorry, ... unavailable" text in its section instead.

v2 is the canary: a different colour and layout, a "v2" badge, and cookie
``product-page=v2`` on every response so a sticky-canary rule can pin the user to it.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)

from services.common import (
    Hop,
    Reply,
    app_state,
    elapsed_ms,
    fetch,
    forward_headers,
    hops,
    init_service,
)

# Shared by every productpage instance so a session made on v1 is valid on v2 (a lab default;
# set SECRET_KEY in anything that is not a workshop).
DEFAULT_SECRET_KEY = "meshlab-bookinfo-not-a-secret"

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": DEFAULT_SECRET_KEY,
    "DETAILS_URL": "http://details:9080",
    "REVIEWS_URL": "http://reviews:9080",
    "RATINGS_URL": "http://ratings:9080",
    "DETAILS_TIMEOUT_SECONDS": 3.0,
    "REVIEWS_TIMEOUT_SECONDS": 3.0,
    "REVIEWS_ATTEMPTS": 2,
    "RATINGS_TIMEOUT_SECONDS": 3.0,
}

PRODUCTS: tuple[dict[str, Any], ...] = (
    {
        "id": 0,
        "title": "The Comedy of Errors",
        "descriptionHtml": (
            '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>:'
            " The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his"
            " shortest and one of his most farcical comedies, with a major part of the humour"
            " coming from slapstick and mistaken identity, in addition to puns and word play."
        ),
    },
)

# Bookinfo's texts when an upstream fails: "Sorry, product details are currently ...".
UNAVAILABLE: dict[str, str] = {
    service: f"Sorry, product {service} are currently unavailable for this book."
    for service in ("details", "reviews", "ratings")
}
STICKY_COOKIE = ("product-page", "v2")


# productpage is where ``end-user`` is made: from the logged-in session only, never taken
# from the caller (Istio's productpage.py does not propagate an incoming one), so a client
# cannot pose as a user the mesh routes on (the dark launch's ``tester``).
SESSION_ONLY = frozenset({"end-user"})


def _headers() -> dict[str, str]:
    """Propagated headers, plus ``end-user`` for a logged-in user (mesh rules match on it)."""
    headers = forward_headers(SESSION_ONLY)
    if user := session.get("user"):
        headers["end-user"] = user
    return headers


def _call(service: str, product_id: Any, headers: dict[str, str]) -> Reply:
    """GET ``<SERVICE>_URL/<service>/<id>`` as Bookinfo does; a failure carries its text.

    Timeout ``<SERVICE>_TIMEOUT_SECONDS``; attempts ``<SERVICE>_ATTEMPTS`` (reviews only: 2).
    """
    cfg = current_app.config
    key = service.upper()
    reply = fetch(
        f"{cfg[f'{key}_URL']}/{service}/{product_id}",
        headers,
        float(cfg[f"{key}_TIMEOUT_SECONDS"]),
        attempts=int(cfg.get(f"{key}_ATTEMPTS", 1)),
    )
    return reply if reply.ok else Reply(reply.status, {"error": UNAVAILABLE[service]})


def _api(reply: Reply) -> tuple[Response, int]:
    return jsonify(reply.body), reply.status


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    init_service(app, "productpage", config, DEFAULTS)
    version = app.config["SERVICE_VERSION"]

    @app.context_processor
    def page_context() -> dict[str, Any]:
        return {"version": version, "user": session.get("user", "")}

    if version == "v2":

        @app.after_request
        def sticky_cookie(response: Response) -> Response:
            response.set_cookie(*STICKY_COOKIE, path="/")
            return response

    @app.get("/")
    @app.get("/index.html")
    def index() -> str:
        return render_template("index.html")

    @app.get("/productpage")
    def front() -> str:
        product_id = 0  # Bookinfo's page shows its one book
        headers = _headers()
        details = _call("details", product_id, headers)
        reviews = _call("reviews", product_id, headers)
        # The chain as the page shows it: this pod with its own time so far, then every hop
        # of the calls it made (failed ones too, with status and flag).
        chain = [Hop(app_state().served_by, elapsed_ms()), *hops()]
        return render_template(
            "productpage.html",
            product=PRODUCTS[product_id],
            details=details,
            reviews=reviews,
            chain=chain,
        )

    @app.post("/login")
    def login() -> Response:
        # Bookinfo checks no password: the name alone is what mesh rules match on.
        if user := request.form.get("username", "").strip():
            session["user"] = user
        return redirect("/productpage")

    @app.get("/logout")
    def logout() -> Response:
        session.pop("user", None)
        return redirect("/productpage")

    @app.get("/api/v1/products")
    def products() -> Response:
        return jsonify(list(PRODUCTS))

    @app.get("/api/v1/products/<product_id>")
    def product(product_id: str) -> tuple[Response, int]:
        return _api(_call("details", product_id, _headers()))

    @app.get("/api/v1/products/<product_id>/reviews")
    def product_reviews(product_id: str) -> tuple[Response, int]:
        return _api(_call("reviews", product_id, _headers()))

    @app.get("/api/v1/products/<product_id>/ratings")
    def product_ratings(product_id: str) -> tuple[Response, int]:
        return _api(_call("ratings", product_id, _headers()))

    return app
