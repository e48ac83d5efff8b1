"""corsPolicy decisions (Envoy's CORS filter)."""

from __future__ import annotations

from mesh.config.model import CorsPolicy, StringMatch
from mesh.sidecar import cors

POLICY = CorsPolicy(
    allow_origins=(
        StringMatch("exact", "https://a.example"),
        StringMatch("prefix", "https://dev."),
    ),
    allow_methods=("GET", "PUT"),
    allow_headers=("x-token",),
    expose_headers=("x-served-by",),
    max_age=86400.0,
    allow_credentials=True,
)
PREFLIGHT = {"origin": "https://a.example", "access-control-request-method": "PUT"}


def test_preflight_from_allowed_origin_is_answered():
    answer = cors.decide_preflight(POLICY, "OPTIONS", PREFLIGHT)
    assert answer is not None and dict(answer) == {
        b"access-control-allow-origin": b"https://a.example",
        b"access-control-allow-methods": b"GET,PUT",
        b"access-control-allow-headers": b"x-token",
        b"access-control-max-age": b"86400",
        b"access-control-allow-credentials": b"true",
    }


def test_unmatched_preflight_forwarded_or_ignored():
    evil = {**PREFLIGHT, "origin": "https://evil.example"}
    assert cors.decide_preflight(POLICY, "OPTIONS", evil) is None
    ignore = CorsPolicy(allow_origins=POLICY.allow_origins, unmatched_preflights="IGNORE")
    assert cors.decide_preflight(ignore, "OPTIONS", evil) == []


def test_not_a_preflight():
    assert cors.decide_preflight(POLICY, "GET", PREFLIGHT) is None
    assert cors.decide_preflight(POLICY, "OPTIONS", {"origin": "https://a.example"}) is None


def test_actual_request_headers():
    assert cors.origin_allowed(POLICY, "https://dev.shop")
    assert not cors.origin_allowed(POLICY, "https://a.example.evil")
    assert dict(cors.response_headers(POLICY, "https://dev.shop")) == {
        b"access-control-allow-origin": b"https://dev.shop",
        b"access-control-allow-credentials": b"true",
        b"access-control-expose-headers": b"x-served-by",
    }
