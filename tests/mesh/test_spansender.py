"""The span sender: batches reach a real collector; a collector that is down, slow or refusing
costs spans, never a blocked or failed caller."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from aiohttp.test_utils import TestServer

from mesh.console.app import CONSOLE_KEY, Settings, create_app
from mesh.spansender import SpanSender, collector_from_env
from mesh.telemetry.zipkin import Endpoint, Span


def span(i: int) -> Span:
    return Span(f"{i:016x}", f"{i:016x}", name="op", kind="SERVER", timestamp=1_700_000_000_000_000 + i,
                duration=10, local_endpoint=Endpoint("svc.default"))  # fmt: skip


def test_collector_address_from_env():
    assert collector_from_env({"ZIPKIN_ADDRESS": "console:20001"}) == ("console", 20001)
    assert collector_from_env({"ZIPKIN_ADDRESS": "[::1]:9411"}) == ("::1", 9411)
    for bad in ("", "console", "console:http", "console:0"):
        assert collector_from_env({"ZIPKIN_ADDRESS": bad}) is None


def test_batches_reach_the_collector(tmp_path):
    async def main() -> None:
        app = create_app(Settings(mesh_dir=tmp_path))
        async with TestServer(app) as server:
            sender = SpanSender("127.0.0.1", server.port, batch_size=5, flush_interval=0.5)
            sender.start()
            await asyncio.sleep(0)
            for i in range(1, 6):
                assert sender.submit(span(i))
            await asyncio.sleep(0.1)  # a full batch goes at once, not at the interval
            assert sender.stats.reports_sent == 1 and sender.stats.spans_sent == 5
            for i in range(6, 8):
                sender.submit(span(i))
            await asyncio.sleep(0.2)
            assert sender.stats.spans_sent == 5  # two spans wait for the interval
            await asyncio.sleep(0.5)
            assert sender.stats.spans_sent == 7 and sender.stats.reports_sent == 2
            await sender.close()
            assert len(app[CONSOLE_KEY].store) == 7
            assert sender.stats.reports_failed == 0 and sender.stats.spans_dropped == 0

    asyncio.run(main())


def test_a_dead_collector_costs_spans_not_callers():
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        sender = SpanSender("127.0.0.1", port, batch_size=5, flush_interval=0.05, max_pending=20)
        sender.start()
        started = time.perf_counter()
        results = [sender.submit(span(i + 1)) for i in range(100)]
        assert time.perf_counter() - started < 0.05  # 100 submits, no waiting on the network
        assert results.count(False) == 80  # the queue holds 20
        await asyncio.sleep(0.3)
        await sender.close()
        assert sender.stats.reports_failed >= 1 and sender.stats.spans_sent == 0
        assert sender.stats.spans_dropped == 100

    asyncio.run(main())


def test_a_slow_collector_times_out_and_a_refusing_one_is_counted():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nno\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        slow = SpanSender("127.0.0.1", silent.getsockname()[1], timeout=0.3, flush_interval=0.05)
        slow.start()
        slow.submit(span(1))
        await asyncio.sleep(0.6)
        await slow.close(timeout=0.2)
        assert slow.stats.reports_failed == 1 and slow.stats.spans_dropped == 1
        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        refusing = SpanSender("127.0.0.1", server.sockets[0].getsockname()[1], flush_interval=0.05)
        refusing.start()
        refusing.submit(span(2))
        await asyncio.sleep(0.3)
        await refusing.close()
        server.close()
        assert refusing.stats.reports_rejected == 1 and refusing.stats.spans_dropped == 1

    try:
        asyncio.run(main())
    finally:
        silent.close()


def test_queued_spans_of_both_kinds_make_one_report_body():
    """Text (what the sidecar's tracer queues) and ``Span`` objects make one JSON array."""
    from mesh.spansender import report_body, span_text

    as_text = span_text(span(1))
    body = report_body([as_text, span(2), span_text(span(3))])
    assert body == ("[" + ",".join(span_text(span(i)) for i in (1, 2, 3)) + "]").encode()
    assert report_body([]) == b"[]"


class Unencodable(Span):
    """A span whose encoding fails (a bug's stand-in)."""

    def to_json(self) -> dict:  # type: ignore[type-arg]
        raise KeyError("bug")


def broken() -> Span:
    return Unencodable("1", "1", name="op")


def test_a_span_that_cannot_be_encoded_costs_that_span_only(tmp_path):
    """Spans are encoded in the sender's task: one whose encoding fails is dropped and
    counted; the rest of the report goes, and the task keeps running."""

    async def main() -> None:
        app = create_app(Settings(mesh_dir=tmp_path))
        async with TestServer(app) as server:
            sender = SpanSender("127.0.0.1", server.port, batch_size=3, flush_interval=0.05)
            sender.start()
            await asyncio.sleep(0)
            for item in (span(1), broken(), span(2)):
                assert sender.submit(item)
            await asyncio.sleep(0.3)
            assert sender.stats.spans_sent == 2 and sender.stats.spans_dropped == 1
            sender.submit(span(3))
            await asyncio.sleep(0.3)  # the task is alive: the next span goes at the interval
            assert sender.stats.spans_sent == 3
            await sender.close()
            assert len(app[CONSOLE_KEY].store) == 3

    asyncio.run(main())


def test_a_report_is_valid_json_whichever_of_its_spans_fail_to_encode():
    """The body goes out in chunks of ``CHUNK`` spans (``report_pieces``): its brackets and
    commas make one JSON array whether the failing record is first, last, in between, alone,
    or on either side of a chunk's edge, and whatever the number of spans."""
    from mesh.spansender import CHUNK, report_pieces, span_text

    for count in (2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1):
        good = [span_text(span(i + 1)) for i in range(count)]
        for at in sorted({0, 1, CHUNK - 1, CHUNK, CHUNK + 1, count - 1, count}):
            if at > count:
                continue
            queue: list = [*good[:at], broken(), *good[at:]]
            pieces, bad = report_pieces(queue)
            assert bad == 1
            assert json.loads(b"".join(pieces)) == [json.loads(t) for t in good]
            assert max(map(len, pieces)) < (CHUNK + 1) * max(map(len, good))  # no whole body
    pieces, bad = report_pieces([broken()])
    assert (b"".join(pieces), bad) == (b"[]", 1)
    assert report_pieces([]) == ([b"[", b"]"], 0)
