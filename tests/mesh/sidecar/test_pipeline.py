"""Pipeline stages one at a time: request view, header operations, fault abort, undefined
cluster, admission (pool limits), the retry judgement, slot hand-over, table swaps."""

from __future__ import annotations

import asyncio
import random

import pytest

from mesh.config.loader import normal_documents
from mesh.routing import HeaderOps, ProxyIdentity, compile_snapshot
from mesh.sidecar.http1.client import CONNECT_FAILURE, TIMEOUT, Attempt, Pool
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.pipeline import (
    ADMITTED,
    ANSWERED,
    WAIT,
    Flight,
    Runtime,
    _shadow,
    apply_ops,
    decide,
    request_view,
    split_authority,
)
from mesh.sidecar.telemetry import Telemetry
from mesh.snapshot import Endpoint, Snapshot
from tests.helpers import make_downstream


def snapshot(resources, endpoints, version=1):  # type: ignore[no-untyped-def]
    return Snapshot(version, normal_documents(resources), tuple(endpoints))


def ep(pod, port, version="v1"):  # type: ignore[no-untyped-def]
    return Endpoint(pod, "svc", "127.0.0.1", port, {"app": "svc", "version": version})


def vs(http):  # type: ignore[no-untyped-def]
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": "svc"}, "spec": {"hosts": ["svc"], "http": http}}  # fmt: skip


def dr(**policy):  # type: ignore[no-untyped-def]
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "svc"},
            "spec": {"host": "svc", "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
                     "trafficPolicy": policy}}  # fmt: skip


@pytest.fixture
def loop():
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def runtime(loop, resources, endpoints):  # type: ignore[no-untyped-def]
    rt = Runtime(loop, Pool(loop), Telemetry("p", "client-v1", None), random.Random(1))
    rt.install(compile_snapshot(snapshot(resources, endpoints), ProxyIdentity("p", {"app": "c"})))
    return rt


def exchange(raw: bytes) -> Exchange:
    pending: list[Exchange] = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(raw)
    return pending[0]


def flight_for(rt: Runtime, ex: Exchange) -> Flight:
    view = request_view(ex, None, absolute=True)
    fwd = decide(rt.table, view, rt.rng)
    return Flight(rt, ex, rt.states.get(fwd.cluster.name), view, fwd, [])


def out(ex: Exchange) -> bytes:
    return ex.conn.transport.out  # type: ignore[union-attr]


def test_request_view_absolute_form_and_host_header():
    ex = exchange(b"GET http://reviews:9080/r/1?x=2 HTTP/1.1\r\nhost: other\r\n\r\n")
    view = request_view(ex, None, absolute=True)
    assert (view.host, view.port, view.path) == ("reviews", 9080, "/r/1?x=2")
    assert ex.authority == "reviews:9080"
    ex = exchange(b"GET /p HTTP/1.1\r\nhost: bookinfo.local:8080\r\n\r\n")
    view = request_view(ex, 8080, absolute=False)
    assert (view.host, view.port, view.path) == ("bookinfo.local", 8080, "/p")
    assert split_authority("a:b", 80) == ("a:b", 80)
    assert split_authority("[::1]:81", 80) == ("[::1]", 81)


def test_header_operations_on_header_lists():
    pairs = [(b"a", b"1"), (b"b", b"2"), (b"b", b"3"), (b"set-cookie", b"x")]
    ops = HeaderOps(set=(("B", "9"),), add=(("a", "more"), ("new", "v")), remove=("set-cookie",))
    assert apply_ops(pairs, ops) == [(b"a", b"1,more"), (b"b", b"9"), (b"new", b"v")]


def test_per_request_timeout_header():
    from mesh.sidecar.pipeline import route_timeout

    assert route_timeout(2.0, {}) == 2.0
    assert route_timeout(2.0, {"x-envoy-upstream-rq-timeout-ms": "250"}) == 0.25
    assert route_timeout(2.0, {"x-envoy-upstream-rq-timeout-ms": "0"}) is None
    assert route_timeout(None, {"x-envoy-upstream-rq-timeout-ms": "x"}) is None


def test_shadow_host_keeps_port():
    assert _shadow("reviews:9080") == "reviews-shadow:9080"
    assert _shadow("reviews") == "reviews-shadow"


def test_fault_abort_is_answered_locally_with_FI(loop):
    rules = [{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 100}}},
              "route": [{"destination": {"host": "svc"}}]}]  # fmt: skip
    rt = runtime(loop, [vs(rules)], [ep("a", 1)])
    ex = exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    assert flight_for(rt, ex).pre_checks() == ANSWERED
    assert out(ex).startswith(b"HTTP/1.1 503") and out(ex).endswith(b"fault filter abort")
    assert ex.flags == "FI"


def test_undefined_cluster_is_503_NC(loop):
    rt = runtime(loop, [vs([{"route": [{"destination": {"host": "svc"}}]}])], [ep("a", 1)])
    ex = exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    flight = flight_for(rt, ex)
    flight.state = None  # as for a subset no DestinationRule defines
    assert flight.pre_checks() == ANSWERED
    assert out(ex).startswith(b"HTTP/1.1 503") and ex.flags == "NC"


def test_admission_limits_UO_and_pending_queue(loop):
    policy = {"connectionPool": {"tcp": {"maxConnections": 1},
                                 "http": {"http1MaxPendingRequests": 1}}}  # fmt: skip
    rt = runtime(loop, [dr(**policy)], [ep("a", 1)])
    flights = [flight_for(rt, exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")) for _ in range(3)]
    assert flights[0].pre_checks() == ADMITTED
    assert flights[1].pre_checks() == WAIT
    flights[1].state.load.waiters.append(loop.create_future())  # it queues
    assert flights[2].pre_checks() == ANSWERED
    assert out(flights[2].ex).startswith(b"HTTP/1.1 503")
    assert b"x-envoy-overloaded: true" in out(flights[2].ex)
    assert flights[2].ex.flags == "UO"
    rt2 = runtime(loop, [dr(connectionPool={"http": {"http2MaxRequests": 1}})], [ep("a", 1)])
    f1, f2 = (flight_for(rt2, exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")) for _ in range(2))
    assert f1.pre_checks() == ADMITTED and f2.pre_checks() == ANSWERED


def _attempt(ex: Exchange, outcome: int) -> Attempt:
    att = Attempt(ex, None, None)  # type: ignore[arg-type]
    att.outcome = outcome
    return att


def test_judge_retries_per_retry_on_then_flags_URX(loop):
    rules = [{"retries": {"attempts": 1, "retryOn": "5xx"},
              "route": [{"destination": {"host": "svc"}}]}]  # fmt: skip
    rt = runtime(loop, [vs(rules)], [ep("a", 1), ep("b", 2)])
    rt.pool.release = lambda conn, reusable: None  # type: ignore[method-assign]
    ex = exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    flight = flight_for(rt, ex)
    assert flight.pre_checks() == ADMITTED
    flight.key = "127.0.0.1:1"
    assert flight.judge(_attempt(ex, 503)) is True  # try again
    flight.n = 1
    att = _attempt(ex, 503)
    att.complete = True
    att.conn = type("C", (), {"served": 0})()  # type: ignore[assignment]
    assert flight.judge(att) is False
    assert out(ex).startswith(b"HTTP/1.1 503") and "URX" in ex.flags


@pytest.mark.parametrize(("outcome", "status", "flag"), [(CONNECT_FAILURE, 503, "UF"),
                                                          (TIMEOUT, 504, "UT")])  # fmt: skip
def test_judge_local_failures(loop, outcome, status, flag):
    rules = [{"retries": {"attempts": 0}, "route": [{"destination": {"host": "svc"}}]}]
    rt = runtime(loop, [vs(rules)], [ep("a", 1)])
    ex = exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    flight = flight_for(rt, ex)
    flight.pre_checks()
    flight.key = "127.0.0.1:1"
    assert flight.judge(_attempt(ex, outcome)) is False
    assert out(ex).startswith(b"HTTP/1.1 %d" % status) and ex.flags == flag
    assert flight.state.load.inflight == 0  # the slot is back


def test_table_swap_keeps_outlier_state_and_load(loop):
    od = {"outlierDetection": {"consecutive5xxErrors": 1, "baseEjectionTime": "30s"}}
    rt = runtime(loop, [dr(**od)], [ep("a", 1), ep("b", 2)])
    name = next(n for n, s in rt.states.items() if s.cluster.label == "svc" and s.cluster.endpoints)
    state = rt.states[name]
    state.record("127.0.0.1:1", 503, 0.0)
    assert [e.key for e in state.healthy] == ["127.0.0.1:2"]
    table2 = compile_snapshot(snapshot([dr(**od), vs([{"route": [{"destination": {"host": "svc"}}]}])],
                                       [ep("a", 1), ep("b", 2)], 2), ProxyIdentity("p", {}))  # fmt: skip
    rt.install(table2)
    again = rt.states[name]
    assert again is not state and again.load is state.load
    assert [e.key for e in again.healthy] == ["127.0.0.1:2"]
    # A changed outlier policy starts fresh.
    od2 = {"outlierDetection": {"consecutive5xxErrors": 3}}
    rt.install(compile_snapshot(snapshot([dr(**od2)], [ep("a", 1), ep("b", 2)], 3),
                                ProxyIdentity("p", {})))  # fmt: skip
    assert len(rt.states[name].healthy) == 2
