"""One exchange: its body to the sink (and kept for a retry), its response framing, the
headers it sends upstream."""

from __future__ import annotations

from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.framing import CHUNKED, chunk
from tests.helpers import make_downstream


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

    head = ex.start_response(200, [b"a: b\r\n"], CHUNKED, -1)
    assert b"transfer-encoding" not in head and b"connection: close" in head
    ex.write_body(b"data")
    ex.end_response()
    assert t.out == b"data" and t.closed


def test_upstream_headers_drop_hop_by_hop_and_connection_listed():
    pending: list[Exchange] = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-hop\r\nX-Hop: 1\r\n"
                       b"TE: trailers\r\nKeep-Alive: 5\r\nX-Keep: 2\r\n\r\n")  # fmt: skip
    lines = pending[0].upstream_headers([b"x-extra: 1\r\n"])
    assert lines == [b"x-keep: 2\r\n", b"x-extra: 1\r\n"]
