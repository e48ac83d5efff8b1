"""The compose lab as an attacker on the same network sees it (issue 11): what ``make up``
publishes and where, what it does to the host's config directory, and the request-smuggling
sequence of the report through the published gateway port."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess

import pytest

from mesh.sidecar.testing import read_response
from tests.e2e.conftest import GATEWAY_PORT, PROJECT, ComposeLab

pytestmark = pytest.mark.e2e


def published_ports() -> dict[str, list[tuple[str, str]]]:
    """Per compose service: (host ip, host port) of every published port."""
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    out: dict[str, list[tuple[str, str]]] = {}
    for info in json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True,
                                          text=True, check=True).stdout):  # fmt: skip
        service = info["Config"]["Labels"]["com.docker.compose.service"]
        for bindings in (info["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or ():
                out.setdefault(service, []).append((binding["HostIp"], binding["HostPort"]))
    return out


def test_make_up_publishes_on_loopback_only(lab: ComposeLab) -> None:
    """Issue 11, finding 5: the gateway and Locust used to listen on every interface."""
    ports = published_ports()
    assert {"istio-ingressgateway", "locust"} <= set(ports), ports
    everything = [binding for bindings in ports.values() for binding in bindings]
    assert everything and all(ip == "127.0.0.1" for ip, _ in everything), ports


def test_config_dir_is_the_users_own(lab: ComposeLab) -> None:
    """Issue 11, finding 5: ``make up`` used to chmod a+rwx the host's config directory; now the
    containers write it as the user who ran ``make up`` and no one else may."""
    lab.make("reset")
    mode = stat.S_IMODE(os.stat(lab.config_dir).st_mode)
    assert mode & 0o022 == 0, oct(mode)
    written = [p for p in lab.config_dir.iterdir() if p.suffix in (".yaml", ".yml")]
    assert written, "the baseline was applied into the config directory"
    assert {p.stat().st_uid for p in written} == {os.getuid()}


def test_smuggling_sequence_of_the_report_leaves_productpage_ready(lab: ComposeLab) -> None:
    """Issue 11, finding 1, as reported: an upgrade request owing 58 bytes, then a request whose
    header value would run as ``POST /health/toggle?ready=false`` on productpage."""
    lab.make("reset")
    try:
        with socket.create_connection(("127.0.0.1", GATEWAY_PORT), timeout=10) as first:
            first.sendall(b"GET /api/v1/products HTTP/1.1\r\nHost: bookinfo.local\r\n"
                          b"Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 58\r\n\r\n")  # fmt: skip
            first.settimeout(1)
            try:
                while first.recv(65536):
                    pass
            except (TimeoutError, ConnectionResetError):
                pass
        with socket.create_connection(("127.0.0.1", GATEWAY_PORT), timeout=15) as second:
            second.sendall(b"GET /api/v1/products HTTP/1.1\r\nHost: bookinfo.local\r\n"
                           b"X-A: POST /health/toggle?ready=false HTTP/1.1\r\n\r\n")  # fmt: skip
            answer = read_response(second)
        assert answer.status == 200 and b"NotReady" not in answer.body, answer
        assert json.loads(answer.body)[0]["id"] == 0  # the products list, as asked
        for _ in range(5):
            assert lab.get("/productpage").status_code == 200
    finally:
        # Whatever happened, productpage is ready again for the tests after this one.
        lab.compose("exec", "-T", "productpage-v1", "python", "-m", "mesh.lab.readiness", "true",
                    check=False)  # fmt: skip
