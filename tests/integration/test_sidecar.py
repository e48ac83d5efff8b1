"""A real sidecar process against scripted loopback upstreams: routing, the pipeline's
stages end to end, streaming, header handling, readiness, registry/status files, admin."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from mesh.sidecar.testing import (
    SidecarProcess,
    Upstream,
    endpoint,
    free_port,
    http_request,
    ok,
    read_response,
    read_status,
    wait_for,
    write_raw_snapshot,
    write_snapshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

_versions = itertools.count(1)


def vs(host: str, http: list[dict], name: str | None = None, **spec: object) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name or host},
        "spec": {"hosts": [host], "http": http, **spec},
    }


def dr(host: str, subsets: list[str] = (), **policy: object) -> dict:  # type: ignore[assignment]
    spec: dict = {"host": host, "subsets": [{"name": s, "labels": {"version": s}} for s in subsets]}
    if policy:
        spec["trafficPolicy"] = policy
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": host},
        "spec": spec,
    }


def to(host: str, subset: str | None = None, weight: int | None = None) -> dict:
    d: dict = {"destination": {"host": host}}
    if subset:
        d["destination"]["subset"] = subset
    if weight is not None:
        d["weight"] = weight
    return d


class Mesh:
    """One sidecar and the snapshot it watches."""

    def __init__(self, root: Path, app: Upstream) -> None:
        self.dir = root
        self.app = app
        self.log = root / "access.log"
        write_snapshot(root, next(_versions), [], [])
        self.sc = SidecarProcess(
            root, app_port=app.port, access_log=str(self.log),
            extra=["--header-timeout", "1", "--probe-path", "/health", "--probe-period", "0.2",
                   "--probe-failure-threshold", "1"],
        ).start(wait_ready=True)  # fmt: skip

    def apply(self, resources: list[dict], endpoints: list) -> int:
        version = next(_versions)
        write_snapshot(self.dir, version, resources, endpoints)
        self.sc.wait_version(version)
        return version

    def get(self, target: str, host: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        if host:
            headers["host"] = host
        return http_request("127.0.0.1", self.sc.outbound_port, kw.pop("method", "GET"),  # type: ignore[arg-type]
                            target, headers, **kw)  # type: ignore[arg-type]  # fmt: skip

    def log_lines(self, needle: str, timeout: float = 3.0) -> list[str]:
        def found() -> list[str]:
            try:
                return [ln for ln in self.log.read_text().splitlines() if needle in ln]
            except OSError:
                return []

        return wait_for(found, timeout, f"access log line with {needle!r}")


@pytest.fixture(scope="module")
def app():
    with Upstream(lambda r: ok(b"healthy") if r.target == "/health" else None, "app") as up:
        yield up


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, app):
    m = Mesh(tmp_path_factory.mktemp("mesh"), app)
    yield m
    m.sc.stop()


@pytest.fixture
def ups():
    made: list[Upstream] = []

    def make(behaviour=None, name="up"):  # type: ignore[no-untyped-def]
        u = Upstream(behaviour, name)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


def test_routes_absolute_form_by_host_and_weights_subsets(mesh, ups):
    v1, v2 = ups(name="v1"), ups(name="v2")
    eps = [endpoint("r1", "reviews", v1.port, version="v1"),
           endpoint("r2", "reviews", v2.port, version="v2")]  # fmt: skip
    mesh.apply([vs("reviews", [{"route": [to("reviews", "v1", 70), to("reviews", "v2", 30)]}]),
                dr("reviews", ["v1", "v2"])], eps)  # fmt: skip
    bodies = [mesh.get("http://reviews:9080/reviews/0").body for _ in range(10)]
    assert sum(b.startswith(b"v1 ") for b in bodies) == 7
    assert sum(b.startswith(b"v2 ") for b in bodies) == 3
    # The upstream gets an origin-form request with the authority as Host.
    req = v1.requests[-1]
    assert req.target == "/reviews/0"
    assert req.headers["host"] == "reviews:9080"


def test_header_match_and_header_operations(mesh, ups):
    v1, v2 = ups(name="v1"), ups(name="v2")
    eps = [endpoint("r1", "reviews", v1.port, version="v1"),
           endpoint("r2", "reviews", v2.port, version="v2")]  # fmt: skip
    rules = [
        {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
         "headers": {"request": {"set": {"x-rule": "jason"}, "remove": ["x-drop"]},
                     "response": {"add": {"x-resp": "added"}, "remove": ["x-upstream"]}},
         "route": [to("reviews", "v2")]},
        {"route": [to("reviews", "v1")]},
    ]  # fmt: skip
    mesh.apply([vs("reviews", rules), dr("reviews", ["v1", "v2"])], eps)
    r = mesh.get("http://reviews:9080/r", headers={"end-user": "jason", "x-drop": "1"})
    assert r.status == 200 and r.body.startswith(b"v2 ")
    assert r.headers["x-resp"] == "added"
    assert "x-upstream" not in r.headers
    seen = v2.requests[-1].headers
    assert seen["x-rule"] == "jason" and "x-drop" not in seen
    assert mesh.get("http://reviews:9080/r", headers={"end-user": "bob"}).body.startswith(b"v1 ")


def test_unknown_host_is_404_NR_and_logged(mesh, ups):
    mesh.apply([], [endpoint("r1", "reviews", ups().port, version="v1")])
    r = mesh.get("http://nowhere.example:9080/x")
    # Envoy's 404 NR; the lab's body says which Host had no route and what is served.
    assert r.status == 404 and r.body.startswith(b'no route: Host "nowhere.example"')
    assert b"Hosts served: " in r.body and b"reviews" in r.body
    assert r.headers["x-meshlab-response-flags"] == "NR"
    assert mesh.log_lines("nowhere.example")[-1].split('"')[2].split()[:2] == ["404", "NR"]


def test_request_id_added_hop_by_hop_stripped_xff_on_inbound(mesh, app):
    before = app.count
    r = http_request("127.0.0.1", mesh.sc.inbound_port, "GET", "/page",
                     {"connection": "close, x-secret", "x-secret": "1", "keep-alive": "5",
                      "te": "trailers", "proxy-connection": "x"})  # fmt: skip
    assert r.status == 200
    wait_for(lambda: app.count > before)
    seen = app.requests[-1].headers
    assert len(seen["x-request-id"]) == 36
    assert seen["x-forwarded-for"] == "127.0.0.1"
    for h in ("x-secret", "keep-alive", "te", "proxy-connection"):
        assert h not in seen
    # An existing x-request-id is kept.
    http_request("127.0.0.1", mesh.sc.inbound_port, "GET", "/p", {"x-request-id": "abc"})
    assert app.requests[-1].headers["x-request-id"] == "abc"


def test_chunked_request_and_response_stream_through(mesh, ups):
    big = bytes(range(256)) * 4096  # 1 MiB

    def behaviour(req):  # type: ignore[no-untyped-def]
        body = req.body[::-1]
        chunks = b"".join(b"%x\r\n" % len(body[i:i + 65536]) + body[i:i + 65536] + b"\r\n"
                          for i in range(0, len(body), 65536))  # fmt: skip
        return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"

    up = ups(behaviour)
    mesh.apply([], [endpoint("s1", "stream", up.port, version="v1")])
    with socket.create_connection(("127.0.0.1", mesh.sc.outbound_port), timeout=10) as s:
        s.sendall(b"POST http://stream:9080/echo HTTP/1.1\r\nhost: stream:9080\r\n"
                  b"transfer-encoding: chunked\r\n\r\n")  # fmt: skip
        for i in range(0, len(big), 100_000):
            part = big[i : i + 100_000]
            s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        r = read_response(s)
    assert r.status == 200 and r.complete
    assert r.headers["transfer-encoding"] == "chunked"
    assert up.requests[-1].body == big
    assert r.body == big[::-1]


def test_keepalive_to_client_and_upstream(mesh, ups):
    up = ups()
    mesh.apply([], [endpoint("k1", "keep", up.port, version="v1")])
    accepted = []
    orig = up._serve

    def counting(conn):  # type: ignore[no-untyped-def]
        accepted.append(conn)
        orig(conn)

    up._serve = counting  # type: ignore[method-assign]
    with socket.create_connection(("127.0.0.1", mesh.sc.outbound_port), timeout=5) as s:
        for i in range(20):
            s.sendall(f"GET http://keep:9080/{i} HTTP/1.1\r\nhost: keep:9080\r\n\r\n".encode())
            r = read_response(s)
            assert r.status == 200 and r.body.endswith(f"/{i}".encode())
    assert len(accepted) == 1


def test_stale_pooled_connection_is_retried_transparently_with_its_body(mesh, ups):
    # Every second request the upstream sees lands on a connection it then drops without an
    # answer: exactly what a keep-alive race with an upstream idle timeout looks like.
    seen = [0]

    def behaviour(req):  # type: ignore[no-untyped-def]
        seen[0] += 1
        return "close" if seen[0] % 2 == 0 else None

    up = ups(behaviour, "stale")
    mesh.apply([], [endpoint("s", "stale", up.port, version="v1")])
    for i in range(4):
        body = f"body-{i}".encode()
        r = mesh.get("http://stale:9080/p", method="POST", body=body)
        assert r.status == 200, r.body
        assert up.requests[-1].body == body
    assert seen[0] == 7  # every request after the first went out twice


def _count_connections(up) -> list:  # type: ignore[no-untyped-def]
    accepted: list = []
    orig = up._serve

    def counting(conn):  # type: ignore[no-untyped-def]
        accepted.append(conn)
        orig(conn)

    up._serve = counting
    return accepted


def test_pool_idle_timeout_closes_idle_upstream_connections(mesh, ups):
    up = ups(name="idle")
    mesh.apply([dr("idle", connectionPool={"http": {"idleTimeout": "1s"}})],
               [endpoint("i", "idle", up.port, version="v1")])  # fmt: skip
    accepted = _count_connections(up)
    for _ in range(2):
        assert mesh.get("http://idle:9080/a").status == 200
        time.sleep(0.2)
    assert len(accepted) == 1  # reused while busy
    time.sleep(2.6)  # idle past idleTimeout (checked once a second)
    assert mesh.get("http://idle:9080/b").status == 200
    assert len(accepted) == 2


def test_pool_max_connection_duration_and_max_requests_per_connection(mesh, ups):
    up = ups(name="life")
    mesh.apply([dr("life", connectionPool={"tcp": {"maxConnectionDuration": "1s"}})],
               [endpoint("l", "life", up.port, version="v1")])  # fmt: skip
    accepted = _count_connections(up)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.5:
        assert mesh.get("http://life:9080/a").status == 200
        time.sleep(0.1)
    assert 2 <= len(accepted) <= 4  # a new connection about every second, not per request

    once = ups(name="once")
    mesh.apply([dr("once", connectionPool={"http": {"maxRequestsPerConnection": 1}})],
               [endpoint("o", "once", once.port, version="v1")])  # fmt: skip
    accepted = _count_connections(once)
    for _ in range(3):
        assert mesh.get("http://once:9080/a").status == 200
    assert len(accepted) == 3  # 1 = no keep-alive upstream


def test_head_request_has_no_body_and_the_connection_stays_usable(mesh, ups):
    up = ups(lambda r: ok(b"x" * 100) if r.method != "HEAD" else
             b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n", "head")  # fmt: skip
    mesh.apply([], [endpoint("h", "head", up.port, version="v1")])
    with socket.create_connection(("127.0.0.1", mesh.sc.outbound_port), timeout=5) as s:
        s.sendall(b"HEAD http://head:9080/x HTTP/1.1\r\nhost: head:9080\r\n\r\n")
        r = read_response(s, "HEAD")
        assert r.status == 200 and r.headers["content-length"] == "100" and r.body == b""
        s.sendall(b"GET http://head:9080/x HTTP/1.1\r\nhost: head:9080\r\n\r\n")
        r = read_response(s)
        assert r.status == 200 and r.body == b"x" * 100


def test_fault_abort_FI_and_delay_DI(mesh, ups):
    up = ups()
    eps = [endpoint("f1", "faulty", up.port, version="v1")]
    rules = [
        {"match": [{"headers": {"x-abort": {"exact": "1"}}}],
         "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}},
         "route": [to("faulty")]},
        {"fault": {"delay": {"fixedDelay": "0.3s", "percentage": {"value": 100}}},
         "route": [to("faulty")]},
    ]  # fmt: skip
    mesh.apply([vs("faulty", rules)], eps)
    before = up.count
    r = mesh.get("http://faulty:9080/a", headers={"x-abort": "1"})
    assert (r.status, r.body) == (418, b"fault filter abort")
    # The lab's flag header: the calling app can tell an injected abort from a failing app.
    assert r.headers["x-meshlab-response-flags"] == "FI"
    assert up.count == before  # never reached the upstream
    t0 = time.monotonic()
    r = mesh.get("http://faulty:9080/d")
    assert r.status == 200 and time.monotonic() - t0 >= 0.3
    assert mesh.log_lines('"GET http://faulty:9080/a')[-1].split('"')[2].split()[1] == "FI"
    assert mesh.log_lines('"GET http://faulty:9080/d')[-1].split('"')[2].split()[1] == "DI"


def test_rewrite_uri_and_authority(mesh, ups):
    up = ups(name="rw")
    rules = [{"match": [{"uri": {"prefix": "/api/v1/"}}],
              "rewrite": {"uri": "/", "authority": "backend.internal"},
              "route": [to("rewrite")]}]  # fmt: skip
    mesh.apply([vs("rewrite", rules)], [endpoint("r", "rewrite", up.port, version="v1")])
    r = mesh.get("http://rewrite:9080/api/v1/items?x=1")
    assert r.status == 200
    assert up.requests[-1].target == "/items?x=1"
    assert up.requests[-1].headers["host"] == "backend.internal"


def test_consistent_hash_on_a_header_is_sticky(mesh, ups):
    a, b = ups(name="a"), ups(name="b")
    eps = [endpoint("a", "sticky", a.port, version="v1"),
           endpoint("b", "sticky", b.port, version="v1")]  # fmt: skip
    mesh.apply([dr("sticky", [], loadBalancer={"consistentHash": {"httpHeaderName": "x-user"}})],
               eps)  # fmt: skip
    for user in ("alice", "bob", "carol", "dave"):
        served = {mesh.get("http://sticky:9080/", headers={"x-user": user}).body[:1]
                  for _ in range(5)}  # fmt: skip
        assert len(served) == 1, (user, served)


def test_consistent_hash_cookie_with_ttl_is_generated_and_sticks(mesh, ups):
    a, b = ups(name="a"), ups(name="b")
    eps = [endpoint("a", "jar", a.port, version="v1"),
           endpoint("b", "jar", b.port, version="v1")]  # fmt: skip
    lb = {"consistentHash": {"httpCookie": {"name": "affinity", "path": "/", "ttl": "60s"}}}
    mesh.apply([dr("jar", [], loadBalancer=lb)], eps)
    for _ in range(4):  # a new connection each time: a new cookie each time
        first = mesh.get("http://jar:9080/")
        assert first.status == 200
        set_cookie = first.headers["set-cookie"]
        assert set_cookie.startswith('affinity="') and "Max-Age=60; Path=/; HttpOnly" in set_cookie
        cookie = set_cookie.split(";")[0]
        served = {mesh.get("http://jar:9080/", headers={"cookie": cookie}).body[:1]
                  for _ in range(5)}  # fmt: skip
        assert served == {first.body[:1]}, (cookie, served)
        again = mesh.get("http://jar:9080/", headers={"cookie": cookie})
        assert "set-cookie" not in again.headers


def test_direct_response_and_redirect(mesh):
    rules = [
        {"match": [{"uri": {"prefix": "/old"}}], "redirect": {"uri": "/new", "authority": "x.y"}},
        {"directResponse": {"status": 201, "body": {"string": "made"}}},
    ]
    mesh.apply([vs("local.example", rules)], [])
    r = mesh.get("http://local.example/old")
    assert r.status == 301 and r.headers["location"].endswith("x.y/new")
    r = mesh.get("http://local.example/else")
    assert (r.status, r.body) == (201, b"made")


def test_retries_go_to_another_host_and_URX_when_exhausted(mesh, ups):
    bad = ups(lambda r: ok(b"bad", 503), "bad")
    good = ups(name="good")
    eps = [endpoint("b", "retry", bad.port, version="v1"),
           endpoint("g", "retry", good.port, version="v1")]  # fmt: skip
    rules = [{"retries": {"attempts": 2, "retryOn": "5xx"}, "route": [to("retry")]}]
    mesh.apply([vs("retry", rules)], eps)
    for _ in range(6):
        r = mesh.get("http://retry:9080/x", method="POST", body=b"payload")
        assert r.status == 200 and r.body.startswith(b"good")
    assert all(req.body == b"payload" for req in bad.requests + good.requests)
    # Only the bad host left: 1 + 2 tries, then the last 503 goes back, flagged URX.
    mesh.apply([vs("retry", rules)], eps[:1])
    before = bad.count
    r = mesh.get("http://retry:9080/only")
    assert r.status == 503 and bad.count - before == 3
    assert "URX" in mesh.log_lines("retry:9080/only")[-1]


def test_app_503_not_retried_by_default(mesh, ups):
    bad = ups(lambda r: ok(b"bad", 503), "bad")
    mesh.apply([], [endpoint("b", "noretry", bad.port, version="v1")])
    r = mesh.get("http://noretry:9080/x")
    assert r.status == 503 and bad.count == 1


def test_route_timeout_504_UT_and_per_try_timeout(mesh, ups):
    slow = ups(lambda r: (time.sleep(1.0), None)[1], "slow")
    eps = [endpoint("s", "slow", slow.port, version="v1")]
    mesh.apply([vs("slow", [{"timeout": "0.2s", "route": [to("slow")]}])], eps)
    t0 = time.monotonic()
    r = mesh.get("http://slow:9080/x")
    took = time.monotonic() - t0
    assert (r.status, r.body) == (504, b"upstream request timeout")
    assert took < 0.8
    assert mesh.log_lines("slow:9080/x")[-1].split('"')[2].split()[1] == "UT"
    # Envoy's per-request override: a longer budget lets the slow answer through.
    r = mesh.get("http://slow:9080/x", headers={"x-envoy-upstream-rq-timeout-ms": "3000"})
    assert r.status == 200 and r.body.startswith(b"slow")
    fast = ups(name="fast")
    eps.append(endpoint("f", "slow", fast.port, version="v1"))
    rules = [{"retries": {"attempts": 2, "perTryTimeout": "0.1s", "retryOn": "reset,5xx"},
              "timeout": "3s", "route": [to("slow")]}]  # fmt: skip
    mesh.apply([vs("slow", rules)], eps)
    for _ in range(3):
        assert mesh.get("http://slow:9080/y").body.startswith(b"fast")


def test_pool_overflow_503_UO(mesh, ups):
    gate = ups(lambda r: (time.sleep(0.5), None)[1], "gate")
    policy = {"connectionPool": {"tcp": {"maxConnections": 1},
                                 "http": {"http1MaxPendingRequests": 1}}}  # fmt: skip
    mesh.apply([dr("pool", [], **policy)], [endpoint("p", "pool", gate.port, version="v1")])
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: mesh.get(f"http://pool:9080/{i}"), range(4)))
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 200, 503, 503]
    over = [r for r in results if r.status == 503]
    assert all(r.headers.get("x-envoy-overloaded") == "true" for r in over)
    assert all(b"overflow" in r.body for r in over)
    assert 'response_flags="UO"' in mesh.sc.admin("/stats/prometheus")[1].decode()


def test_subset_without_pods_is_503_UH(mesh, ups):
    up = ups()
    eps = [endpoint("e1", "empty", up.port, version="v1")]
    mesh.apply([vs("empty", [{"route": [to("empty", "v9")]}]), dr("empty", ["v1", "v9"])], eps)
    r = mesh.get("http://empty:9080/x")
    assert (r.status, r.body) == (503, b"no healthy upstream")


def test_mirror_gets_shadow_host_and_is_discarded(mesh, ups):
    main, shadow = ups(name="main"), ups(lambda r: ok(b"shadow", 500), "shadow")
    eps = [endpoint("m1", "mirror", main.port, version="v1"),
           endpoint("m2", "mirror", shadow.port, version="v2")]  # fmt: skip
    rules = [{"route": [to("mirror", "v1")], "mirror": {"host": "mirror", "subset": "v2"},
              "mirrorPercentage": {"value": 100.0}}]  # fmt: skip
    mesh.apply([vs("mirror", rules), dr("mirror", ["v1", "v2"])], eps)
    r = mesh.get("http://mirror:9080/m", method="POST", body=b"copy me")
    assert r.status == 200 and r.body.startswith(b"main")
    wait_for(lambda: shadow.count == 1, 3, "the mirrored copy")
    assert shadow.requests[0].headers["host"] == "mirror-shadow:9080"
    assert shadow.requests[0].body == b"copy me"


def test_upstream_failures_503_UF_and_sidecar_survives(mesh, ups):
    dead = free_port()  # nothing listens here
    cases = {
        "refused": endpoint("d", "refused", dead, version="v1"),
        "reset": endpoint("r", "reset", ups(lambda r: "reset").port, version="v1"),
        "closed": endpoint("c", "closed", ups(lambda r: "close").port, version="v1"),
        "garbage": endpoint("g", "garbage", ups(lambda r: b"NOT HTTP\r\n\r\n").port,
                            version="v1"),
    }  # fmt: skip
    mesh.apply([], list(cases.values()))
    for name in cases:
        r = mesh.get(f"http://{name}:9080/x")
        assert r.status == 503, name
        assert r.body.startswith(b"upstream connect error or disconnect/reset before headers")
        assert mesh.log_lines(f"{name}:9080/x")[-1].split('"')[2].split()[1].startswith("UF")
    assert mesh.sc.alive()


def test_upstream_hanging_mid_body_is_cut_at_the_route_timeout(mesh, ups):
    partial = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 10
    up = ups(lambda r: [partial, "hang"] if r.target == "/partial" else None, "mid")
    eps = [endpoint("mid", "mid", up.port, version="v1")]
    mesh.apply([vs("mid", [{"timeout": "0.5s", "route": [to("mid")]}])], eps)
    t0 = time.monotonic()
    r = mesh.get("http://mid:9080/partial")
    assert r.status == 200 and not r.complete and r.body == b"x" * 10
    assert time.monotonic() - t0 < 2
    assert "UT" in mesh.log_lines("mid:9080/partial")[-1]
    assert mesh.get("http://mid:9080/fine").status == 200
    # Hanging before any response byte: 504 UT.
    up.behaviour = lambda r: "hang"
    r = mesh.get("http://mid:9080/hang")
    assert (r.status, r.body) == (504, b"upstream request timeout")
    assert mesh.sc.alive()


def test_upstream_closing_mid_body_with_fin(mesh, ups):
    def behaviour(req):  # type: ignore[no-untyped-def]
        return b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n" + b"y" * 10

    up = ups(behaviour, "fin")
    mesh.apply([], [endpoint("fin", "fin", up.port, version="v1")])
    r = mesh.get("http://fin:9080/x")
    assert r.status == 200 and not r.complete and r.body == b"y" * 10
    assert "UC" in mesh.log_lines("fin:9080/x")[-1]
    assert mesh.sc.alive()


def test_client_leaving_mid_request_is_logged_DC(mesh, ups):
    up = ups(lambda r: "hang", "hang")
    mesh.apply([], [endpoint("h", "gone", up.port, version="v1")])
    with socket.create_connection(("127.0.0.1", mesh.sc.outbound_port), timeout=5) as s:
        s.sendall(b"GET http://gone:9080/bye HTTP/1.1\r\nhost: gone:9080\r\n\r\n")
        wait_for(lambda: up.count == 1, 3, "request upstream")
    line = mesh.log_lines("gone:9080/bye")[-1]
    assert line.split('"')[2].split()[1] == "DC"
    assert mesh.sc.alive()


def test_bad_snapshots_are_refused_and_last_good_kept(mesh, ups):
    up = ups(name="kept")
    good = mesh.apply([], [endpoint("k", "kept", up.port, version="v1")])
    for bad in (b'{"version": 99, "resources": [', b"\x00\xffgarbage", b"[]"):
        write_raw_snapshot(mesh.dir, bad)
        wait_for(lambda: (read_status(mesh.dir, mesh.sc.pod) or {}).get("error"), 5, "refusal")
        assert mesh.get("http://kept:9080/x").body.startswith(b"kept")
        assert mesh.sc.applied_version() == good
    # A snapshot that parses but does not validate: refused with its version.
    bad_version = next(_versions)
    write_snapshot(mesh.dir, bad_version, [vs("kept", [{"route": [{"destination": {}}]}])], [])
    status = wait_for(
        lambda: (s := read_status(mesh.dir, mesh.sc.pod)) and s.get("error_version") == bad_version
        and s, 5, "validation refusal")  # fmt: skip
    assert status["version"] == good and status["error"]
    assert mesh.get("http://kept:9080/x").status == 200
    nxt = mesh.apply([], [endpoint("k", "kept", up.port, version="v1")])
    # The status file follows the applied snapshot on the writer's thread (the admin port,
    # which ``apply`` waits on, is at once): the write that carries ``nxt`` clears the error.
    status = wait_for(
        lambda: (s := read_status(mesh.dir, mesh.sc.pod)) and s.get("version") == nxt and s,
        5, "status of the next good snapshot")  # fmt: skip
    assert status["error"] is None and status["error_version"] is None


def test_hostile_header_against_regex_is_linear(mesh, ups):
    up = ups()
    rules = [{"match": [{"headers": {"x-evil": {"regex": "(a+)+b"}}}], "route": [to("regex")]},
             {"directResponse": {"status": 204}}]  # fmt: skip
    mesh.apply([vs("regex", rules)], [endpoint("x", "regex", up.port, version="v1")])
    t0 = time.monotonic()
    r = mesh.get("http://regex:9080/", headers={"x-evil": "a" * 50_000 + "!"})
    assert r.status == 204 and time.monotonic() - t0 < 0.5
    assert mesh.get("http://regex:9080/", headers={"x-evil": "aaab"}).status == 200


def test_cors_preflight_answered_and_response_headers_added(mesh, ups):
    up = ups()
    policy = {"allowOrigins": [{"exact": "https://shop.example"}, {"regex": "https://.*\\.ok"}],
              "allowMethods": ["GET", "POST"], "allowHeaders": ["x-a"], "maxAge": "60s",
              "exposeHeaders": ["x-served-by"], "allowCredentials": True}  # fmt: skip
    mesh.apply([vs("cors", [{"corsPolicy": policy, "route": [to("cors")]}])],
               [endpoint("c", "cors", up.port, version="v1")])  # fmt: skip
    before = up.count
    pre = {"origin": "https://shop.example", "access-control-request-method": "POST"}
    r = mesh.get("http://cors:9080/x", method="OPTIONS", headers=pre)
    assert r.status == 200 and up.count == before  # answered by the sidecar
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert r.headers["access-control-allow-methods"] == "GET,POST"
    assert r.headers["access-control-max-age"] == "60"
    r = mesh.get("http://cors:9080/x", headers={"origin": "https://a.ok"})
    assert r.status == 200 and r.headers["access-control-allow-origin"] == "https://a.ok"
    assert r.headers["access-control-expose-headers"] == "x-served-by"
    r = mesh.get("http://cors:9080/x", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    # A preflight from an origin not allowed is forwarded (unmatchedPreflights: FORWARD).
    r = mesh.get("http://cors:9080/x", method="OPTIONS",
                 headers={**pre, "origin": "https://evil.example"})  # fmt: skip
    assert up.count == before + 3


def test_registry_status_and_admin(mesh):
    reg = json.loads((mesh.dir / "registry" / f"{mesh.sc.pod}.json").read_text())
    assert reg["pod"] == mesh.sc.pod and reg["service"] == "test" and reg["role"] == "sidecar"
    assert reg["ready"] is True and reg["port"] == mesh.sc.inbound_port
    assert reg["address"] == "127.0.0.1" and reg["admin_port"] == mesh.sc.admin_port
    assert reg["labels"] == {"app": "test", "version": "v1"} and reg["ttl"] == 10.0
    assert time.time() - reg["heartbeat"] < 3
    dump = mesh.sc.admin_json("/config_dump")
    # The status file catches up with the admin port on the writer's thread.
    status = wait_for(
        lambda: (s := read_status(mesh.dir, mesh.sc.pod)) and s.get("version") == dump["version"]
        and s, 5, "status of the applied snapshot")  # fmt: skip
    assert status["ready"] is True and status["role"] == "sidecar"
    clusters = mesh.sc.admin_json("/clusters?format=json")
    assert isinstance(clusters["clusters"], list)
    text = mesh.sc.admin("/stats/prometheus")[1].decode()
    assert "istio_requests_total{" in text and "mesh_config_version" in text
    assert "istio_request_duration_milliseconds_bucket" in text


def test_readiness_follows_the_probe(tmp_path):
    healthy = {"ok": False}

    def behaviour(req):  # type: ignore[no-untyped-def]
        if req.target == "/health":
            return ok(b"ok") if healthy["ok"] else ok(b"no", 500)
        return None

    with Upstream(behaviour, "app") as app:
        write_snapshot(tmp_path, 1, [], [])
        sc = SidecarProcess(tmp_path, app_port=app.port, extra=[
            "--probe-path", "/health", "--probe-period", "0.1",
            "--probe-failure-threshold", "2", "--probe-success-threshold", "2"]).start()  # fmt: skip
        try:
            reg = tmp_path / "registry" / f"{sc.pod}.json"
            wait_for(reg.exists, 5, "registry record")
            time.sleep(0.5)
            assert json.loads(reg.read_text())["ready"] is False
            assert sc.admin("/ready")[0] == 503
            healthy["ok"] = True
            wait_for(lambda: json.loads(reg.read_text())["ready"], 5, "ready")
            healthy["ok"] = False
            wait_for(lambda: not json.loads(reg.read_text())["ready"], 5, "unready")
        finally:
            sc.stop()
        assert not reg.exists()  # removed on clean shutdown


class EchoWebSocket:
    """A real WebSocket server (the ``websockets`` library) that greets, then echoes."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        def handler(ws) -> None:  # type: ignore[no-untyped-def]
            ws.send(f"hello {ws.request.path}")
            for message in ws:
                ws.send(message)

        self.server = serve(handler, "127.0.0.1", 0)
        self.port = int(self.server.socket.getsockname()[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()


def ws_connect(mesh: Mesh, uri: str):  # type: ignore[no-untyped-def]
    """A WebSocket client to ``uri`` through the sidecar's outbound listener."""
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", mesh.sc.outbound_port), timeout=5)
    return connect(uri, sock=sock, open_timeout=5, close_timeout=2)


def test_websocket_upgrade_is_routed_and_relayed_both_ways(mesh):
    echo = EchoWebSocket()
    try:
        rules = [{"match": [{"uri": {"prefix": "/chat"}}], "route": [to("ws-echo")]}]
        mesh.apply([vs("ws-echo", rules)], [endpoint("w", "ws-echo", echo.port, version="v1")])
        with ws_connect(mesh, "ws://ws-echo:9080/chat/room1") as ws:
            assert ws.recv(timeout=5) == "hello /chat/room1"  # server speaks first
            for i in range(20):
                ws.send(f"text {i}")
                assert ws.recv(timeout=5) == f"text {i}"
            big = bytes(range(256)) * 1024  # 256 KiB binary frame, both ways
            ws.send(big)
            assert ws.recv(timeout=5) == big
        # The route applies to upgrades as to any request: no route, 404.
        with pytest.raises(Exception, match="404"):
            ws_connect(mesh, "ws://ws-echo:9080/elsewhere")
        line = mesh.log_lines('"GET /chat/room1')[-1]
        assert line.split('"')[2].split()[0] == "101"
        # Plain HTTP to the same route still works (the echo server refuses it: 426).
        assert mesh.get("http://ws-echo:9080/chat/plain").status == 426
    finally:
        echo.close()


def test_websocket_refused_by_the_upstream_gets_its_answer_and_a_closed_connection(mesh, ups):
    up = ups(lambda r: ok(b"no sockets here", 403), "nows")
    mesh.apply([], [endpoint("n", "no-ws", up.port, version="v1")])
    sock = socket.create_connection(("127.0.0.1", mesh.sc.outbound_port), timeout=5)
    sock.sendall(b"GET /socket HTTP/1.1\r\nHost: no-ws:9080\r\nConnection: Upgrade\r\n"
                 b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")  # fmt: skip
    r = read_response(sock)
    assert (r.status, r.body) == (403, b"no sockets here")
    # The upstream saw the upgrade it was asked for, and the client's connection ends.
    assert up.requests[-1].headers["upgrade"] == "websocket"
    assert up.requests[-1].headers["connection"].lower() == "upgrade"
    assert sock.recv(1) == b""
    sock.close()
