"""The lab's httpbin: go-httpbin's shapes for the endpoints Istio's tasks use."""

from __future__ import annotations

import time

from services.httpbin.app import create_app


def client():  # type: ignore[no-untyped-def]
    return create_app({"TESTING": True}).test_client()


def test_status_delay_headers_ip_get_anything() -> None:
    c = client()
    assert c.get("/status/418").status_code == 418
    assert c.get("/status/503").status_code == 503
    assert c.get("/status/200,503:0").status_code == 200
    assert c.get("/status/nope").status_code == 400
    began = time.monotonic()
    assert c.get("/delay/0.2").status_code == 200
    assert time.monotonic() - began >= 0.2
    assert c.get("/delay/11").status_code == 400
    headers = c.get("/headers", headers={"X-B3-Traceid": "abc"}).get_json()["headers"]
    assert headers["X-B3-Traceid"] == ["abc"]
    assert "origin" in c.get("/ip", headers={"X-Forwarded-For": "10.0.0.9"}).get_json()
    assert (
        c.get("/ip", headers={"X-Forwarded-For": "10.0.0.9, 1.2.3.4"}).get_json()["origin"]
        == "10.0.0.9"
    )
    got = c.get("/get?a=1&a=2").get_json()
    assert (got["args"], got["method"]) == ({"a": ["1", "2"]}, "GET")
    anything = c.post("/anything/x", json={"k": 1}).get_json()
    assert (anything["method"], anything["json"]) == ("POST", {"k": 1})
    assert c.get("/health").status_code == 200
