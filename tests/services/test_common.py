"""services.common: settings precedence, failure knobs, health, propagation, x-served-by.

The knobs are exercised through a real service (details, the simplest), since they are
installed on every service the same way.
"""

from __future__ import annotations

import time

import pytest

from mesh.headers import PROPAGATED_HEADERS
from services.common import FailMode
from services.details.app import create_app as details_app
from services.reviews.app import create_app as reviews_app


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("  ", None),
        ("503", FailMode(503, 1.0)),
        ("503:0.5", FailMode(503, 0.5)),
        ("500:0", FailMode(500, 0.0)),
        ("418:1", FailMode(418, 1.0)),
    ],
)
def test_fail_mode_parse(text: str, expected: FailMode | None) -> None:
    assert FailMode.parse(text) == expected


@pytest.mark.parametrize("text", ["abc", "503:x", "503:1.5", "503:-0.1", "99", "600", ":0.5"])
def test_fail_mode_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="FAIL_MODE"):
        FailMode.parse(text)


def test_bad_fail_mode_fails_at_start() -> None:
    with pytest.raises(ValueError):
        details_app({"FAIL_MODE": "boom"})


def test_settings_precedence_default_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert details_app().config["SERVICE_VERSION"] == "v1"
    monkeypatch.setenv("SERVICE_VERSION", "v2")
    monkeypatch.setenv("EXTRA_LATENCY_MS", "7")
    app = details_app()
    assert app.config["SERVICE_VERSION"] == "v2"
    assert app.config["EXTRA_LATENCY_MS"] == 7.0  # typed like its default
    assert details_app({"SERVICE_VERSION": "v9"}).config["SERVICE_VERSION"] == "v9"


def test_empty_env_is_unset_and_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRA_LATENCY_MS", "")
    monkeypatch.setenv("SERVICE_VERSION", "")
    app = details_app()
    assert (app.config["EXTRA_LATENCY_MS"], app.config["SERVICE_VERSION"]) == (0.0, "v1")
    monkeypatch.setenv("START_UNREADY_SECONDS", "soon")
    with pytest.raises(ValueError, match="START_UNREADY_SECONDS='soon': expected float"):
        details_app()


def test_service_name_and_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTNAME", "details-v1-abc")
    app = details_app({"SERVICE_NAME": "details-eu"})
    response = app.test_client().get("/details/0")
    assert response.headers["x-served-by"] == "details-eu-v1"
    assert app.config["POD_NAME"] == "details-v1-abc"
    assert details_app({"POD_NAME": "p1"}).test_client().get("/health").json["pod"] == "p1"


def test_fail_mode_always_fails_but_health_stays_green() -> None:
    client = details_app({"FAIL_MODE": "503", "SERVICE_VERSION": "v2"}).test_client()
    for _ in range(5):
        response = client.get("/details/0")
        assert response.status_code == 503
        assert "FAIL_MODE" in response.json["error"]
        # The failing instance still says who it is: the circuit-breaker demo shows it.
        assert response.headers["x-served-by"] == "details-v2"
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json["status"] == "Ready"


def test_fail_mode_any_status_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIL_MODE", "500")
    assert details_app().test_client().get("/details/0").status_code == 500


def test_fail_mode_fraction_is_binomial() -> None:
    n, p = 2000, 0.3
    client = details_app({"FAIL_MODE": f"503:{p}", "FAIL_SEED": 7}).test_client()
    codes = [client.get("/details/0").status_code for _ in range(n)]
    assert set(codes) == {200, 503}
    failures = codes.count(503)
    # 99.9 % two-sided binomial interval: mean +- 3.29 standard deviations.
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(failures - n * p) <= 3.29 * sd


def test_fail_mode_seed_is_reproducible() -> None:
    def run() -> list[int]:
        client = details_app({"FAIL_MODE": "503:0.5", "FAIL_SEED": "42"}).test_client()
        return [client.get("/details/0").status_code for _ in range(50)]

    assert run() == run()


def test_fail_mode_zero_fraction_never_fails() -> None:
    client = details_app({"FAIL_MODE": "503:0"}).test_client()
    assert {client.get("/details/0").status_code for _ in range(50)} == {200}


def test_start_unready_seconds() -> None:
    client = details_app({"START_UNREADY_SECONDS": 0.3}).test_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json["status"] == "NotReady"
    assert "starting" in health.json["reason"]
    # Not ready is not dead: a request that reaches the app is served.
    assert client.get("/details/0").status_code == 200
    time.sleep(0.35)
    assert client.get("/health").status_code == 200


def test_start_unready_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("START_UNREADY_SECONDS", "30")
    assert details_app().test_client().get("/health").status_code == 503


def test_extra_latency_spares_health() -> None:
    client = details_app({"EXTRA_LATENCY_MS": 200}).test_client()
    start = time.monotonic()
    assert client.get("/details/0").status_code == 200
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    client.get("/health")
    assert time.monotonic() - start < 0.15


def test_readiness_toggle() -> None:
    client = details_app().test_client()
    assert client.post("/health/toggle").status_code == 503
    assert client.get("/health").json == {
        "status": "NotReady",
        "service": "details",
        "version": "v1",
        "pod": client.application.config["POD_NAME"],
        "reason": "readiness toggled off",
    }
    assert client.post("/health/toggle").status_code == 200
    assert client.post("/health/toggle?ready=false").status_code == 503
    assert client.post("/health/toggle?ready=false").status_code == 503  # idempotent
    assert client.post("/health/toggle", data={"ready": "true"}).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/health/toggle").status_code == 405


def test_toggle_is_per_app_instance() -> None:
    first, second = details_app().test_client(), details_app().test_client()
    first.post("/health/toggle")
    assert first.get("/health").status_code == 503
    assert second.get("/health").status_code == 200


def test_toggle_and_start_delay_both_needed() -> None:
    client = details_app({"START_UNREADY_SECONDS": 30}).test_client()
    response = client.post("/health/toggle?ready=true")
    assert response.status_code == 503


def test_propagated_headers_reach_upstream(recorder) -> None:
    rec, url = recorder(body={"id": 0, "ratings": {"Reviewer1": 1, "Reviewer2": 2}})
    client = reviews_app({"SERVICE_VERSION": "v2", "RATINGS_URL": url}).test_client()
    # Werkzeug's test client owns the Cookie header: it is sent from the client's jar.
    sent = {name: f"value-{i}" for i, name in enumerate(PROPAGATED_HEADERS) if name != "cookie"}
    client.set_cookie("user", "jason")
    response = client.get("/reviews/0", headers={**sent, "x-not-propagated": "secret"})
    assert response.status_code == 200
    [seen] = rec.seen
    assert seen.path == "/ratings/0"
    for name, value in sent.items():
        assert seen.headers[name] == value, name
    assert seen.headers["cookie"] == "user=jason"
    assert "x-not-propagated" not in seen.headers


def test_only_present_headers_are_sent(recorder) -> None:
    rec, url = recorder(body={"id": 0, "ratings": {}})
    reviews_app({"SERVICE_VERSION": "v2", "RATINGS_URL": url}).test_client().get("/reviews/0")
    assert "end-user" not in rec.seen[0].headers
    assert "x-request-id" not in rec.seen[0].headers


def test_http_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch, recorder) -> None:
    # The sidecar's role: the app calls http://ratings:9080 and the proxy routes by Host.
    sidecar, sidecar_url = recorder(body={"id": 0, "ratings": {"Reviewer1": 3}})
    monkeypatch.setenv("HTTP_PROXY", sidecar_url)
    response = reviews_app({"SERVICE_VERSION": "v2"}).test_client().get("/reviews/0")
    assert response.json["reviews"][0]["rating"] == {"stars": 3, "color": "black"}
    [seen] = sidecar.seen
    assert (seen.host, seen.path) == ("ratings:9080", "/ratings/0")


def test_upstream_cookies_are_not_replayed(recorder) -> None:
    rec, url = recorder(body={"id": 0, "ratings": {}}, headers={"Set-Cookie": "leak=1; Path=/"})
    client = reviews_app({"SERVICE_VERSION": "v2", "RATINGS_URL": url}).test_client()
    client.get("/reviews/0")
    client.get("/reviews/0")
    assert "cookie" not in rec.seen[1].headers


def test_served_by_chains_upstream_header(recorder) -> None:
    _, url = recorder(body={"id": 0, "ratings": {}}, headers={"x-served-by": "ratings-v7"})
    client = reviews_app({"SERVICE_VERSION": "v3", "RATINGS_URL": url}).test_client()
    assert client.get("/reviews/0").headers["x-served-by"] == "reviews-v3, ratings-v7"
    assert client.get("/health").headers["x-served-by"] == "reviews-v3"


def test_server_timing_round_trips_hops_and_survives_junk() -> None:
    from services.common import Hop

    hops = [Hop("details-v1", 8.04), Hop("reviews", 1.2, "503 FI", (), False), Hop("ratings-v1")]
    header = ", ".join(h.timing() for h in hops)
    assert header == 'details-v1;dur=8.0, reviews;dur=1.2;desc="503 FI", ratings-v1'
    parsed = Hop.parse_timing(header, {"details-v1", "ratings-v1"})
    assert [(h.name, h.ms, h.failure, h.answered) for h in parsed] == [
        ("details-v1", 8.0, "", True),
        ("reviews", 1.2, "503 FI", False),
        ("ratings-v1", None, "", True),
    ]
    # Another server's Server-Timing (or garbage) never breaks the page.
    assert [h.name for h in Hop.parse_timing('db;dur=abc, cache;desc="x, y"', set())][:1] == ["db"]
    assert Hop.parse_timing("", set()) == []
    assert Hop("x", 2503.0).time_text == "2.50 s" and Hop("x", 8.4).time_text == "8 ms"
