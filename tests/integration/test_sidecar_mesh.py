"""End to end through real sidecars: hot reload under load, outlier detection, gateway mode,
and two hops (outbound of one pod to the inbound of another)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

from mesh.sidecar.testing import (
    SidecarProcess,
    Upstream,
    endpoint,
    free_port,
    gateway_process,
    gateway_resource,
    http_request,
    ok,
    read_response,
    read_status,
    wait_for,
    write_snapshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def vs(host: str, http: list[dict], **spec: object) -> dict:
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": host.replace(".", "-")},
            "spec": {"hosts": [host], "http": http, **spec}}  # fmt: skip


def dr(host: str, subsets: list[str], **policy: object) -> dict:
    spec: dict = {"host": host, "subsets": [{"name": s, "labels": {"version": s}} for s in subsets]}
    if policy:
        spec["trafficPolicy"] = policy
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": host}, "spec": spec}  # fmt: skip


def route(host: str, subset: str | None = None, weight: int | None = None) -> dict:
    dest: dict = {"host": host}
    if subset:
        dest["subset"] = subset
    out: dict = {"destination": dest}
    if weight is not None:
        out["weight"] = weight
    return out


def test_100_reloads_under_200_rps_lose_nothing(tmp_path):
    import socket

    with Upstream(name="v1") as v1, Upstream(name="v2") as v2:
        eps = [endpoint("a1", "reload", v1.port, version="v1"),
               endpoint("a2", "reload", v2.port, version="v2")]  # fmt: skip
        write_snapshot(tmp_path, 1, [dr("reload", ["v1", "v2"])], eps)
        sc = SidecarProcess(tmp_path).start()
        sc.wait_version(1)
        failures: list[str] = []
        done = threading.Event()
        count = [0]

        def client(offset: float) -> None:
            # Keep-alive client, 100 req/s each (two of them: 200 req/s).
            s = socket.create_connection(("127.0.0.1", sc.outbound_port), timeout=5)
            t0 = time.monotonic() + offset
            i = 0
            while not done.is_set():
                i += 1
                slot = t0 + i * 0.01
                delay = slot - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    s.sendall(b"GET http://reload:9080/x HTTP/1.1\r\nhost: reload:9080\r\n\r\n")
                    r = read_response(s)
                    if r.status != 200 or not r.complete:
                        failures.append(f"{r.status} {r.body[:80]!r}")
                except OSError as exc:
                    failures.append(repr(exc))
                    s = socket.create_connection(("127.0.0.1", sc.outbound_port), timeout=5)
                count[0] += 1
            s.close()

        threads = [threading.Thread(target=client, args=(k * 0.005,)) for k in range(2)]
        for t in threads:
            t.start()
        try:
            for version in range(2, 102):
                w1 = (version * 7) % 101
                rules = [{"route": [route("reload", "v1", w1), route("reload", "v2", 100 - w1)]}]
                if version % 10 == 0:
                    rules = [{"route": [route("reload", "v2")]}]
                write_snapshot(tmp_path, version, [vs("reload", rules), dr("reload", ["v1", "v2"])],
                               eps)  # fmt: skip
                time.sleep(0.03)
            sc.wait_version(101)
            time.sleep(0.3)
        finally:
            done.set()
            for t in threads:
                t.join()
        applied = sc.admin_json("/config_dump")["version"]
        metrics = sc.admin("/stats/prometheus")[1].decode()
        sc.stop()
    assert applied == 101
    swaps = int(re.search(r"^mesh_config_applied_total (\d+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    print(f"{count[0]} requests, {swaps} table swaps")
    assert swaps >= 50  # most of the 100 changes were applied one by one, under load
    assert count[0] >= 500
    assert failures == []


def test_outlier_detection_ejects_and_returns(tmp_path):
    failing = {"on": True}

    def flaky(req):  # type: ignore[no-untyped-def]
        return ok(b"bad", 503) if failing["on"] else ok(b"recovered")

    with Upstream(name="good") as good, Upstream(flaky, "bad") as bad:
        eps = [endpoint("good", "details", good.port, version="v1"),
               endpoint("bad", "details", bad.port, version="v1")]  # fmt: skip
        policy = {
            "outlierDetection": {
                "consecutive5xxErrors": 2,
                "interval": "0.2s",
                "baseEjectionTime": "1s",
                "maxEjectionPercent": 100,
            }
        }
        write_snapshot(tmp_path, 1, [dr("details", ["v1"], **policy)], eps)  # fmt: skip
        sc = SidecarProcess(tmp_path).start()
        sc.wait_version(1)

        def get() -> int:
            return http_request("127.0.0.1", sc.outbound_port, "GET",
                                "http://details:9080/d").status  # fmt: skip

        statuses = [get() for _ in range(6)]
        # Round robin: the bad host answers twice, then is ejected.
        assert statuses.count(503) == 2
        assert bad.count == 2
        t_eject = time.monotonic()
        # Published at once in the proxy's status record (what meshctl endpoints and the
        # console read), not at the next heartbeat (2 s): within 0.5 s, generous.
        status_file = tmp_path / "status" / f"{sc.pod}.json"

        def ejected_in_status() -> list:  # type: ignore[type-arg]
            try:
                return json.loads(status_file.read_text()).get("ejected") or []
            except (OSError, ValueError):
                return []

        (entry,) = wait_for(ejected_in_status, 0.5, "the ejection in status/<pod>.json")
        assert entry["pod"] == "bad" and entry["cluster"].endswith(
            "details.default.svc.cluster.local"
        )
        assert 0 < entry["until"] - time.time() <= 1.0
        text = sc.admin("/clusters")[1].decode()
        assert f"::127.0.0.1:{bad.port}::health_flags::/failed_outlier_check" in text
        assert f"::127.0.0.1:{good.port}::health_flags::healthy" in text
        for _ in range(20):
            assert get() == 200
        assert bad.count == 2
        clusters = sc.admin_json("/clusters?format=json")["clusters"]
        details = [c for c in clusters if c["host"].startswith("details") and c["endpoints"]]
        assert any(e["ejected"] for c in details for e in c["endpoints"])
        assert "mesh_outlier_ejections_total" in sc.admin("/stats/prometheus")[1].decode()
        # An unrelated config change keeps the ejection.
        write_snapshot(tmp_path, 2, [dr("details", ["v1"], **policy),
                                     vs("other.example", [{"directResponse": {"status": 204}}])],
                       eps)  # fmt: skip
        sc.wait_version(2)
        if time.monotonic() - t_eject < 0.8:
            assert get() == 200 and bad.count == 2
        # Back after baseEjectionTime (checked at the 0.2 s sweeps).
        failing["on"] = False
        wait_for(lambda: get() == 200 and bad.count > 2, 5, "host back in rotation")
        assert time.monotonic() - t_eject >= 0.9
        sc.stop()


def test_gateway_binds_server_ports_and_routes_by_host(tmp_path):
    with Upstream(name="pp1") as pp1, Upstream(name="pp2") as pp2:
        eps = [endpoint("pp1", "productpage", pp1.port, version="v1"),
               endpoint("pp2", "productpage", pp2.port, version="v2")]  # fmt: skip
        gw = {"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway",
              "metadata": {"name": "bookinfo-gateway"},
              "spec": {"selector": {"istio": "ingressgateway"},
                       "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                                    "hosts": ["*"]}]}}  # fmt: skip
        gvs = vs("bookinfo.local", [{"match": [{"uri": {"prefix": "/productpage"}}],
                                     "route": [route("productpage", "v1")]}],
                 gateways=["bookinfo-gateway"])  # fmt: skip
        test_vs = vs("test.bookinfo.local", [{"route": [route("productpage", "v2")]}],
                     gateways=["bookinfo-gateway"])  # fmt: skip
        resources = [gw, gvs, test_vs, dr("productpage", ["v1", "v2"])]
        write_snapshot(tmp_path, 1, resources, eps)
        listen = free_port()
        sc = SidecarProcess(tmp_path, pod="istio-ingressgateway", gateway=True,
                            labels={"istio": "ingressgateway", "app": "istio-ingressgateway"},
                            extra=["--gateway-port-map", f"8080:{listen}"]).start(wait_ready=True)  # fmt: skip
        try:
            r = http_request("127.0.0.1", listen, "GET", "/productpage",
                             {"host": "bookinfo.local"})  # fmt: skip
            assert r.status == 200 and r.body.startswith(b"pp1")
            seen = pp1.requests[-1].headers
            assert seen["x-forwarded-for"] == "127.0.0.1" and len(seen["x-request-id"]) == 36
            r = http_request("127.0.0.1", listen, "GET", "/", {"host": "test.bookinfo.local:8080"})
            assert r.body.startswith(b"pp2")
            r = http_request("127.0.0.1", listen, "GET", "/nothing", {"host": "bookinfo.local"})
            assert r.status == 404
            reg = (tmp_path / "registry" / "istio-ingressgateway.json").read_text()
            assert '"role": "gateway"' in reg
            # The Gateway goes away: its listener closes.
            write_snapshot(tmp_path, 2, [dr("productpage", ["v1", "v2"])], eps)
            sc.wait_version(2)

            def closed() -> bool:
                try:
                    http_request("127.0.0.1", listen, "GET", "/", timeout=1)
                except OSError:
                    return True
                return False

            wait_for(closed, 5, "gateway listener closed")
        finally:
            sc.stop()


def test_two_hops_outbound_to_inbound(tmp_path):
    with Upstream(name="ratings-app") as app:
        b = SidecarProcess(tmp_path, pod="ratings-v1", labels={"app": "ratings", "version": "v1"},
                           app_port=app.port)  # fmt: skip
        a = SidecarProcess(tmp_path, pod="reviews-v2", labels={"app": "reviews", "version": "v2"})
        eps = [endpoint("ratings-v1", "ratings", b.inbound_port, version="v1")]
        write_snapshot(tmp_path, 1, [], eps)
        a.start()
        b.start()
        try:
            a.wait_version(1)
            r = http_request("127.0.0.1", a.outbound_port, "GET", "http://ratings:9080/ratings/0",
                             {"end-user": "jason"})  # fmt: skip
            assert r.status == 200 and r.body == b"ratings-app GET /ratings/0"
            seen = app.requests[-1].headers
            assert seen["end-user"] == "jason" and seen["host"] == "ratings:9080"
            # Metadata exchange is between the proxies: the app never sees it.
            assert not any(h.startswith("x-envoy-peer-metadata") for h in seen)
            text = a.admin("/stats/prometheus")[1].decode()
            assert re.search(
                r'istio_requests_total\{reporter="source",source_workload="reviews-v2",'
                r'.*destination_workload="ratings-v1",.*destination_app="ratings",'
                r'destination_version="v1",.*response_code="200",.*'
                r'connection_security_policy="unknown"\} 1', text,
            )  # fmt: skip
            text = b.admin("/stats/prometheus")[1].decode()
            # The callee knows its caller from the exchanged metadata.
            assert re.search(
                r'istio_requests_total\{reporter="destination",source_workload="reviews-v2",'
                r'.*source_app="reviews",source_version="v2",.*'
                r'destination_workload="ratings-v1",.*destination_service_name="ratings",.*'
                r'connection_security_policy="none"\} 1', text,
            )  # fmt: skip
        finally:
            a.stop()
            b.stop()


def test_gateway_port_in_use_keeps_it_unready_until_bound(tmp_path):
    import socket

    gw = gateway_resource()
    write_snapshot(tmp_path, 1, [gw], [])
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    listen = blocker.getsockname()[1]
    sc = SidecarProcess(tmp_path, pod="gw", gateway=True, labels={"istio": "ingressgateway"},
                        extra=["--gateway-port-map", f"8080:{listen}"]).start()  # fmt: skip
    try:
        status = wait_for(lambda: (s := read_status(tmp_path, "gw") or {}).get("listener_error")
                          and s, 10, "listener error")  # fmt: skip
        assert status["ready"] is False and str(listen) in status["listener_error"]
        assert sc.admin("/ready")[0] == 503
        blocker.close()
        wait_for(sc.is_ready, 10, "bound after the port freed up")
        r = http_request("127.0.0.1", listen, "GET", "/", {"host": "x"})
        assert r.status == 404  # bound, and no VirtualService: NR
    finally:
        blocker.close()
        sc.stop()


def test_websocket_through_gateway_and_inbound_sidecar(tmp_path):
    """A WebSocket as a browser opens it on the lab: ingress gateway -> the pod's inbound
    listener -> the app; the server pushes, the client echoes, either side may close."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    from websockets.sync.server import serve

    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        ws.send("tick 0")
        for message in ws:
            if message == "bye":
                ws.close()  # the server ends it
                return
            ws.send(f"echo {message}")

    server = serve(handler, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app_port = int(server.socket.getsockname()[1])
    pod = SidecarProcess(tmp_path, pod="live-v1", labels={"app": "live", "version": "v1"},
                         app_port=app_port)  # fmt: skip
    gw = gateway_resource()
    gvs = vs("live.example", [{"route": [route("live")]}], gateways=["gw"])
    write_snapshot(tmp_path, 1, [gw, gvs], [endpoint("live-v1", "live", pod.inbound_port)])
    gateway, listen = gateway_process(tmp_path)
    pod.start()
    gateway.start(wait_ready=True)
    try:
        for _ in range(3):  # several sockets in a row: nothing leaks between them
            sock = socket.create_connection(("127.0.0.1", listen), timeout=5)
            with connect("ws://live.example/feed", sock=sock, open_timeout=5) as ws:
                assert ws.recv(timeout=5) == "tick 0"
                for i in range(10):
                    ws.send(str(i))
                    assert ws.recv(timeout=5) == f"echo {i}"
                ws.send("bye")
                with pytest.raises(ConnectionClosed):  # closed by the server, relayed to us
                    ws.recv(timeout=5)
        # Plain HTTP on the same gateway still works.
        r = http_request("127.0.0.1", listen, "GET", "/plain", {"host": "live.example"})
        assert r.status == 426  # the app speaks WebSocket only
    finally:
        gateway.stop()
        pod.stop()
        server.shutdown()
