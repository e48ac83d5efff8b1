"""services.gunicorn_conf: keep-alive gthread workers, bind from the environment; and the
documented command really serves and keeps the connection alive."""

from __future__ import annotations

import http.client
import runpy

import pytest

from services.launch import free_port, start, stop


def conf() -> dict:
    return runpy.run_module("services.gunicorn_conf")


def test_defaults() -> None:
    settings = conf()
    assert settings["bind"] == "127.0.0.1:9080"
    assert settings["worker_class"] == "gthread"
    assert (settings["workers"], settings["threads"], settings["keepalive"]) == (1, 8, 75)


def test_port_and_bind_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "19080")
    assert conf()["bind"] == "127.0.0.1:19080"
    monkeypatch.setenv("BIND", "0.0.0.0:9080")
    assert conf()["bind"] == "0.0.0.0:9080"
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    assert conf()["threads"] == 4


def test_gunicorn_serves_with_keep_alive() -> None:
    port = free_port()
    process = start("ratings", port, {"SERVICE_VERSION": "v1"})
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        sockets = []
        for _ in range(3):
            connection.request("GET", "/ratings/0")
            sockets.append(connection.sock)
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("x-served-by") == "ratings-v1"
            response.read()
        connection.close()
        # http.client reopens a closed connection silently: the same socket proves keep-alive.
        assert sockets[0] is sockets[1] is sockets[2]
    finally:
        stop(process)
