"""Stages 3-6 of one flight from plain values: fault abort, undefined cluster, admission,
and the verdict on a try acted on."""

from __future__ import annotations

import pytest

from mesh.sidecar.flight import ADMITTED, ANSWERED, WAIT
from mesh.sidecar.http1.client import CONNECT_FAILURE, TIMEOUT, Attempt
from mesh.sidecar.http1.exchange import Exchange
from tests.helpers import (
    flight_for,
    parsed_exchange,
    sidecar_runtime,
    svc_dr,
    svc_endpoint,
    svc_vs,
    written,
)


def test_fault_abort_is_answered_locally_with_FI(loop):
    rules = [{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 100}}},
              "route": [{"destination": {"host": "svc"}}]}]  # fmt: skip
    rt = sidecar_runtime(loop, [svc_vs(rules)], [svc_endpoint("a", 1)])
    ex = parsed_exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    assert flight_for(rt, ex).pre_checks() == ANSWERED
    assert written(ex).startswith(b"HTTP/1.1 503") and written(ex).endswith(b"fault filter abort")
    assert ex.flags == "FI"


def test_undefined_cluster_is_503_NC(loop):
    rt = sidecar_runtime(
        loop, [svc_vs([{"route": [{"destination": {"host": "svc"}}]}])], [svc_endpoint("a", 1)]
    )
    ex = parsed_exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    flight = flight_for(rt, ex)
    flight.state = None  # as for a subset no DestinationRule defines
    assert flight.pre_checks() == ANSWERED
    assert written(ex).startswith(b"HTTP/1.1 503") and ex.flags == "NC"


def test_admission_limits_UO_and_pending_queue(loop):
    policy = {"connectionPool": {"tcp": {"maxConnections": 1},
                                 "http": {"http1MaxPendingRequests": 1}}}  # fmt: skip
    rt = sidecar_runtime(loop, [svc_dr(**policy)], [svc_endpoint("a", 1)])
    flights = [
        flight_for(rt, parsed_exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")) for _ in range(3)
    ]
    assert flights[0].pre_checks() == ADMITTED
    assert flights[1].pre_checks() == WAIT
    flights[1].state.load.waiters.append(loop.create_future())  # it queues
    assert flights[2].pre_checks() == ANSWERED
    assert written(flights[2].ex).startswith(b"HTTP/1.1 503")
    assert b"x-envoy-overloaded: true" in written(flights[2].ex)
    assert flights[2].ex.flags == "UO"
    rt2 = sidecar_runtime(
        loop, [svc_dr(connectionPool={"http": {"http2MaxRequests": 1}})], [svc_endpoint("a", 1)]
    )
    f1, f2 = (
        flight_for(rt2, parsed_exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")) for _ in range(2)
    )
    assert f1.pre_checks() == ADMITTED and f2.pre_checks() == ANSWERED


def _attempt(ex: Exchange, outcome: int) -> Attempt:
    att = Attempt(ex, None, None)  # type: ignore[arg-type]
    att.outcome = outcome
    return att


def test_judge_retries_per_retry_on_then_flags_URX(loop):
    rules = [{"retries": {"attempts": 1, "retryOn": "5xx"},
              "route": [{"destination": {"host": "svc"}}]}]  # fmt: skip
    rt = sidecar_runtime(loop, [svc_vs(rules)], [svc_endpoint("a", 1), svc_endpoint("b", 2)])
    rt.pool.release = lambda conn, reusable: None  # type: ignore[method-assign]
    ex = parsed_exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    flight = flight_for(rt, ex)
    assert flight.pre_checks() == ADMITTED
    flight.key = "127.0.0.1:1"
    assert flight.judge(_attempt(ex, 503)) is True  # try again
    flight.n = 1
    att = _attempt(ex, 503)
    att.complete = True
    att.conn = type("C", (), {"served": 0})()  # type: ignore[assignment]
    assert flight.judge(att) is False
    assert written(ex).startswith(b"HTTP/1.1 503") and "URX" in ex.flags


@pytest.mark.parametrize(("outcome", "status", "flag"), [(CONNECT_FAILURE, 503, "UF"),
                                                          (TIMEOUT, 504, "UT")])  # fmt: skip
def test_judge_local_failures(loop, outcome, status, flag):
    rules = [{"retries": {"attempts": 0}, "route": [{"destination": {"host": "svc"}}]}]
    rt = sidecar_runtime(loop, [svc_vs(rules)], [svc_endpoint("a", 1)])
    ex = parsed_exchange(b"GET http://svc/ HTTP/1.1\r\n\r\n")
    flight = flight_for(rt, ex)
    flight.pre_checks()
    flight.key = "127.0.0.1:1"
    assert flight.judge(_attempt(ex, outcome)) is False
    assert written(ex).startswith(b"HTTP/1.1 %d" % status) and ex.flags == flag
    assert flight.state.load.inflight == 0  # the slot is back
