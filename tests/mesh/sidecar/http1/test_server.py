"""The client connection driven by hand: a fake transport, bytes in, bytes out."""

from __future__ import annotations

import pytest

from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.server import MAX_HEADER_BYTES, Downstream
from tests.helpers import FakeTransport, Tracker, make_downstream


def test_parses_head_and_answers_keep_alive():
    conn, t, tracker, seen = make_downstream()
    conn.data_received(b"GET /a?b=1 HTTP/1.1\r\nHost: X\r\nEnd-User: jason\r\nA: 1\r\nA: 2\r\n\r\n")
    ex = seen[0]
    assert ex.method == "GET" and ex.url == b"/a?b=1" and ex.http11 and ex.keep_alive
    # Lowercase names (as Envoy normalises), repeated headers joined for matching.
    assert ex.hdict == {"host": "X", "end-user": "jason", "a": "1, 2"}
    assert t.out.startswith(b"HTTP/1.1 200 OK\r\n") and t.out.endswith(b"\r\n\r\n/a?b=1")
    assert not t.closed and tracker.done == [ex]
    assert conn.peer == "10.0.0.9"


def test_pipelined_requests_run_in_order_one_at_a_time():
    pending: list[Exchange] = []
    conn, t, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    assert [e.url for e in pending] == [b"/1"]  # the second waits for the first
    assert t.paused  # and reading stops while requests queue up
    pending[0].reply(200, b"one")
    assert [e.url for e in pending] == [b"/1", b"/2"]
    pending[1].reply(200, b"two")
    assert t.out.index(b"one") < t.out.index(b"two")
    assert not t.paused


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nx: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"h: v\r\n" * 101 + b"\r\n", 431),
        (b"CONNECT a:443 HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_unparseable_requests_get_an_error_and_close(data, status):
    conn, t, tracker, seen = make_downstream()
    conn.data_received(data)
    assert t.out.startswith(b"HTTP/1.1 %d " % status)
    assert b"connection: close" in t.out and t.closed
    assert seen == [] and tracker.bad == [status]
    conn.data_received(b"GET / HTTP/1.1\r\n\r\n")  # ignored after the error
    assert seen == []


def test_broken_chunked_body_of_running_exchange_answers_400():
    pending: list[Exchange] = []
    conn, t, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
    assert len(pending) == 1 and not pending[0].request_done
    conn.data_received(b"loXXX")
    assert t.out.startswith(b"HTTP/1.1 400") and pending[0].finished


def test_header_timeout_and_idle_timeout_ticks():
    # A sweep right after the accept is not a period of silence: never cut before the
    # timeout (2 s here), at most one sweep after it.
    conn, t, _, _ = make_downstream()
    conn.tick(2, 5)
    conn.tick(2, 5)
    assert t.out == b""
    conn.tick(2, 5)
    assert t.out.startswith(b"HTTP/1.1 408") and t.closed
    conn, t, _, _ = make_downstream()
    conn.data_received(b"GET / HTTP/1.1\r\n\r\n")  # answered; now idle
    for _ in range(5):
        conn.tick(2, 5)
    assert not t.closed
    conn.tick(2, 5)
    assert t.closed


# --- framing as Envoy's codec (issue 11) -----------------------------------------------------


def test_websocket_upgrade_head_has_no_http_body_and_holds_what_follows():
    started: list[Exchange] = []
    conn, t, tracker, _ = make_downstream(started.append)
    conn.data_received(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       b"Upgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n")  # fmt: skip
    (ex,) = started
    # Transfer-Encoding dropped (Envoy), the rest is the new protocol's: held, never parsed.
    assert ex.upgrade == b"websocket" and ex.request_done and ex.req_framing == 0
    assert b"".join(ex.early) == b"5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize("upgrade", [b"foo", b"websocket, h2c", b"TLS/1.2"])
def test_an_upgrade_istio_does_not_enable_is_403_and_close(upgrade):
    conn, t, tracker, seen = make_downstream()
    conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + upgrade
                       + b"\r\nContent-Length: 4\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")  # fmt: skip
    assert seen == [] and t.out.startswith(b"HTTP/1.1 403 ") and t.closed
    assert b"smuggled" not in t.out


def test_h2c_offer_is_plain_http_with_its_body():
    started: list[Exchange] = []

    def answer(ex: Exchange) -> None:
        started.append(ex)
        ex.reply(200, b"")

    conn, t, tracker, _ = make_downstream(answer)
    conn.data_received(b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
                       b"Content-Length: 10\r\n\r\n01234")  # fmt: skip
    conn.data_received(b"56789GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
    first, second = started
    assert first.upgrade is None and b"".join(first.body) == b"0123456789"
    assert first.request_done and second.url == b"/second"
    # Neither the upgrade nor its settings go upstream (named in Connection: hop-by-hop).
    lines = b"".join(first.upstream_headers([])).lower()
    assert b"upgrade" not in lines and b"http2-settings" not in lines


def test_h2c_offer_with_a_chunked_body_is_refused():
    conn, t, tracker, seen = make_downstream()
    conn.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")  # fmt: skip
    assert seen == [] and t.out.startswith(b"HTTP/1.1 400 ") and t.closed


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"identity", b"xchunked"])
def test_a_transfer_coding_other_than_chunked_is_501(coding):
    conn, t, tracker, seen = make_downstream()
    conn.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding
                       + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")  # fmt: skip
    assert seen == [] and t.out.startswith(b"HTTP/1.1 501 ") and t.closed


def test_trailers_are_not_taken_for_headers():
    conn, t, tracker, seen = make_downstream()
    conn.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n")  # fmt: skip
    assert [n for n, _ in seen[0].headers] == [b"host", b"transfer-encoding"]


def test_100_continue_of_a_queued_request_waits_for_its_turn():
    started: list[Exchange] = []
    conn, t, tracker, seen = make_downstream(started.append)
    conn.data_received(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                       b"Expect: 100-continue\r\n\r\n")  # fmt: skip
    first = started[0]
    first.conn.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
    assert b"100 Continue" not in t.out  # not inside the first response
    first.conn.write(b"done")
    first.end_response()
    assert t.out.endswith(b"doneHTTP/1.1 100 Continue\r\n\r\n")
    assert started[1].url == b"/second"


def test_header_timeout_runs_from_the_first_byte_not_the_last():
    conn, t, tracker, seen = make_downstream()
    conn.data_received(b"GET / HTTP/1.1\r\nX-Pad: ")
    for _ in range(3):  # a byte per sweeper period: the idle timer restarts, this one not
        conn.tick(3, 300)
        conn.data_received(b"a")
    conn.tick(3, 300)
    assert t.out.startswith(b"HTTP/1.1 408 ") and t.closed


def test_connection_over_the_cap_is_closed_at_once_and_counted():
    tracker = Tracker()
    tracker.max_connections = 1
    first, second = (
        Downstream(lambda ex: None, tracker, 80),
        Downstream(lambda ex: None, tracker, 80),
    )
    t1, t2 = FakeTransport(), FakeTransport()
    first.connection_made(t1)
    second.connection_made(t2)
    assert not t1.aborted and t2.aborted and tracker.overflows == 1 and tracker.conns == {first}
