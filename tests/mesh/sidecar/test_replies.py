"""Local replies from the one table: Envoy's status, body and flag; a verdict's reply."""

from __future__ import annotations

from mesh.resilience.verdict import REPLY, Verdict
from mesh.sidecar import replies
from tests.helpers import parsed_exchange, written


def test_a_local_reply_has_envoys_status_body_flag_and_headers():
    ex = parsed_exchange(b"GET / HTTP/1.1\r\n\r\n")
    replies.send(ex, replies.OVERFLOW)
    assert written(ex).startswith(b"HTTP/1.1 503 ")
    assert b"x-envoy-overloaded: true" in written(ex)
    assert written(ex).endswith(replies.OVERFLOW.body) and ex.flags == "UO"


def test_an_injected_abort_keeps_its_status():
    ex = parsed_exchange(b"GET / HTTP/1.1\r\n\r\n")
    replies.send(ex, replies.FAULT_ABORT, status=418)
    assert written(ex).startswith(b"HTTP/1.1 418 ") and ex.flags == "FI"


def test_a_verdicts_reply_finds_its_body_by_its_first_flag():
    ex = parsed_exchange(b"GET / HTTP/1.1\r\n\r\n")
    replies.send_verdict(ex, Verdict(REPLY, 504, "UT,URX"))
    assert written(ex).startswith(b"HTTP/1.1 504 ")
    assert written(ex).endswith(replies.UPSTREAM_TIMEOUT.body) and ex.flags == "UT,URX"
    ex = parsed_exchange(b"GET / HTTP/1.1\r\n\r\n")
    replies.send_verdict(ex, Verdict(REPLY, 503, "UF"))
    assert written(ex).endswith(replies.CONNECT_FAILURE.body) and ex.flags == "UF"


def test_a_bug_costs_the_connection_not_the_proxy():
    ex = parsed_exchange(b"GET / HTTP/1.1\r\n\r\n")
    replies.send(ex, replies.INTERNAL_ERROR)
    assert written(ex).startswith(b"HTTP/1.1 500 ") and b"connection: close" in written(ex)
