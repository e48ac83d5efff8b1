"""The downstream protocol driven by hand: a fake transport, bytes in, bytes out."""

from __future__ import annotations

import pytest

from mesh.sidecar.downstream import (
    MAX_HEADER_BYTES,
    Exchange,
    chunk,
    new_request_id,
)
from tests.helpers import make_downstream


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


def test_request_body_buffered_then_streamed_to_sink_with_replay_copy():
    class Sink:
        def __init__(self) -> None:
            self.data = b""

        def send_raw(self, data: bytes) -> None:
            self.data += data

        def send_body(self, data: bytes, chunked: bool) -> None:
            self.data += chunk(data) if chunked else data

    pending: list[Exchange] = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
    ex = pending[0]
    sink = Sink()
    ex.attach(sink, b"HEAD\r\n\r\n", replay=False)  # type: ignore[arg-type]
    conn.data_received(b"2\r\nde\r\n0\r\n\r\n")
    assert sink.data == b"HEAD\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert ex.request_done and ex.replayable and b"".join(ex.replay or ()) == b"abcde"
    again = Sink()
    ex.attach(again, b"H2\r\n\r\n", replay=True)  # type: ignore[arg-type]
    assert again.data == b"H2\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"


def test_big_body_is_not_kept_for_replay():
    pending: list[Exchange] = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    body = b"x" * 70_000
    conn.data_received(b"POST / HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
    assert not pending[0].replayable


def test_response_reframing_for_http10_and_head():
    pending: list[Exchange] = []
    conn, t, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(b"GET / HTTP/1.0\r\n\r\n")
    ex = pending[0]
    from mesh.sidecar.downstream import CHUNKED

    head = ex.start_response(200, [b"a: b\r\n"], CHUNKED, -1)
    assert b"transfer-encoding" not in head and b"connection: close" in head
    ex.write_body(b"data")
    ex.end_response()
    assert t.out == b"data" and t.closed


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


def test_request_ids_are_uuid4():
    import uuid

    rid = new_request_id()
    assert uuid.UUID(rid).version == 4 and rid != new_request_id()


def test_upstream_headers_drop_hop_by_hop_and_connection_listed():
    pending: list[Exchange] = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-hop\r\nX-Hop: 1\r\n"
                       b"TE: trailers\r\nKeep-Alive: 5\r\nX-Keep: 2\r\n\r\n")  # fmt: skip
    lines = pending[0].upstream_headers([b"x-extra: 1\r\n"])
    assert lines == [b"x-keep: 2\r\n", b"x-extra: 1\r\n"]
