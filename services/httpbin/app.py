"""httpbin for the lab: the endpoints Istio's tasks use, in go-httpbin's shapes.

Istio's ``samples/httpbin/httpbin.yaml`` runs ``mccutchen/go-httpbin`` on port 8080; the lab
maps that image to this app. Endpoints: ``/status/<code>`` (one code, or several comma
separated with optional ``:weight``, one picked at random), ``/delay/<seconds>`` (at most 10),
``/headers``, ``/ip``, ``/get``, ``/anything[/...]`` (any method), ``/user-agent``. Request
headers come back as lists of values, as go-httpbin returns them (Istio's security tasks read
``.headers["X-Forwarded-Client-Cert"][0]``). ``/health`` is the lab's usual probe endpoint.
"""

from __future__ import annotations

import random
import time
from typing import Any

from flask import Flask, Response, jsonify, request

from services.common import init_service

MAX_DELAY_SECONDS = 10.0
STATUS_BODIES = {418: "I'm a teapot!"}


def _headers() -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault("-".join(p.capitalize() for p in name.split("-")), []).append(value)
    return headers


def _origin() -> str:
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.split(",")[0].strip() if forwarded else (request.remote_addr or "")


def _args() -> dict[str, list[str]]:
    return {key: request.args.getlist(key) for key in request.args}


def _echo(**extra: Any) -> dict[str, Any]:
    return {
        "args": _args(),
        "headers": _headers(),
        "method": request.method,
        "origin": _origin(),
        "url": request.url,
        **extra,
    }


def _pick_status(spec: str) -> int | None:
    choices: list[tuple[int, float]] = []
    for part in spec.split(","):
        code, _, weight = part.partition(":")
        try:
            choices.append((int(code), float(weight) if weight else 1.0))
        except ValueError:
            return None
    if not choices or any(not 100 <= c < 600 or w < 0 for c, w in choices):
        return None
    if len(choices) == 1:
        return choices[0][0]
    codes, weights = zip(*choices, strict=True)
    return random.choices(codes, weights)[0]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    init_service(app, "httpbin", config, {})

    @app.route("/status/<codes>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    def status(codes: str) -> Response | tuple[Response, int]:
        code = _pick_status(codes)
        if code is None:
            return jsonify(error=f"invalid status code(s) {codes!r}"), 400
        return Response(STATUS_BODIES.get(code, ""), status=code, mimetype="text/plain")

    @app.route("/delay/<seconds>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def delay(seconds: str) -> Response | tuple[Response, int]:
        try:
            wait = float(seconds)
        except ValueError:
            return jsonify(error=f"invalid delay {seconds!r}"), 400
        if not 0 <= wait <= MAX_DELAY_SECONDS:
            return jsonify(error=f"delay must be within 0..{MAX_DELAY_SECONDS:g} s"), 400
        time.sleep(wait)
        return jsonify(_echo())

    @app.get("/headers")
    def headers() -> Response:
        return jsonify(headers=_headers())

    @app.get("/ip")
    def ip() -> Response:
        return jsonify(origin=_origin())

    @app.get("/user-agent")
    def user_agent() -> Response:
        return jsonify({"user-agent": request.headers.get("User-Agent", "")})

    @app.get("/get")
    def get() -> Response:
        return jsonify(_echo())

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    @app.route("/anything", methods=methods)
    @app.route("/anything/<path:_rest>", methods=methods)
    def anything(_rest: str = "") -> Response:
        body = request.get_data(as_text=True)
        return jsonify(_echo(data=body, json=request.get_json(silent=True)))

    return app
