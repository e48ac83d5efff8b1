"""Batching, fire-and-forget span reporting to a Zipkin collector (``POST /api/v2/spans``).

Primitive: ``SpanSender``. ``submit(span)`` is what a proxy calls on its request path: one list
append, never an await, never an exception; a span is dropped (and counted) when
``max_pending`` spans already wait. A span is its Zipkin v2 JSON text (what the sidecar's
tracer hands over) or a ``Span``. One report carries at most ``max_batch`` spans, written as a
few buffers of ``CHUNK`` spans each (``report_pieces``), so a burst never makes one huge body.
A background task (``start()``) sends a batch when ``batch_size`` spans are pending or
``flush_interval`` seconds passed, one request at a time on a kept-alive connection, each
bounded by ``timeout``. A collector that is down, slow or answering anything but 202 costs the
batch (counted in ``failed`` / ``rejected``), never a request. This is Envoy's Zipkin reporter
(``tracing.zipkin.min_flush_spans`` 5, ``flush_interval_ms``, ``request_timeout`` 5 s, stats
``spans_sent``, ``reports_sent``, ``reports_dropped``, ``reports_failed``) with a 1 s interval
so a trace shows up at once.

``collector_from_env()`` reads the lab's collector address (``ZIPKIN_ADDRESS=host:port``, like
Istio's ``meshConfig.defaultConfig.tracing.zipkin.address``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from mesh.telemetry.zipkin import Span

ENV_ADDRESS = "ZIPKIN_ADDRESS"
SPANS_PATH = "/api/v2/spans"
_OPEN, _COMMA, _CLOSE = b"[", b",", b"]"
# Spans joined and encoded together in a report (``report_pieces``): 32 spans of ~1 KB.
CHUNK = 32


def span_text(span: Span | str) -> str:
    """The Zipkin v2 JSON of one queued span: text as it is, a ``Span`` by ``json.dumps``."""
    if type(span) is str:
        return span
    return json.dumps(span.to_json(), separators=(",", ":"))  # type: ignore[union-attr]


def report_pieces(spans: list[Span | str]) -> tuple[list[bytes], int]:
    """One report's body, ``[span,span,...]``, as a list of buffers written together
    (``writelines``), and how many spans could not be encoded (a ``Span`` whose encoding
    fails is dropped, counted, never the sender's task). The spans are joined and encoded
    ``CHUNK`` at a time: one join and one UTF-8 encoding per chunk, not per span, while
    each buffer stays a few tens of KB. A whole report of a few hundred spans in one buffer
    would be several hundred KB made and copied per report, on fresh pages from the kernel
    each time (glibc maps and trims blocks that large): about one page fault per span at
    10,000 requests a second."""
    pieces: list[bytes] = [_OPEN]
    bad = 0
    for start in range(0, len(spans), CHUNK):
        chunk = spans[start : start + CHUNK]
        try:
            text = ",".join(chunk)  # type: ignore[arg-type]  # text only (the tracer's): in C
        except TypeError:  # ``Span`` objects among them: one at a time
            texts = []
            for span in chunk:
                try:
                    texts.append(span_text(span))
                except Exception:
                    bad += 1
            if not texts:
                continue
            text = ",".join(texts)
        pieces.append(text.encode())
        pieces.append(_COMMA)
    if len(pieces) > 1:
        pieces[-1] = _CLOSE  # the comma after the last chunk
    else:
        pieces.append(_CLOSE)
    return pieces, bad


def report_body(spans: list[Span | str]) -> bytes:
    """One report's body as one buffer (``report_pieces`` joined)."""
    return b"".join(report_pieces(spans)[0])


def collector_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """``(host, port)`` from ``ZIPKIN_ADDRESS``, or None when unset or unusable."""
    text = (environ if environ is not None else os.environ).get(ENV_ADDRESS, "").strip()
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


@dataclass
class SenderStats:
    spans_sent: int = 0
    reports_sent: int = 0
    reports_failed: int = 0  # the collector did not answer (down, slow, reset)
    reports_rejected: int = 0  # it answered, but not 202
    spans_dropped: int = 0  # never sent: the queue was full, or their batch failed


class SpanSender:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        batch_size: int = 5,
        flush_interval: float = 1.0,
        max_pending: int = 1000,
        max_batch: int = 500,
        min_gap: float = 0.02,
        timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.max_batch = max_batch
        # At least this long between two reports: under load spans gather into fewer,
        # bigger reports (a report costs far more than a span), at most 50 a second.
        self.min_gap = min_gap
        self.timeout = timeout
        self.pending: list[Span | str] = []
        self.stats = SenderStats()
        self._due: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    # -- the request path ----------------------------------------------------------------

    def submit(self, span: Span | str) -> bool:
        """Queue ``span`` (its JSON text, or a ``Span``) for sending; False when it was
        dropped (queue full)."""
        pending = self.pending
        n = len(pending)
        if n >= self.max_pending:
            self.stats.spans_dropped += 1
            return False
        pending.append(span)
        # The report is due when the queue reaches ``batch_size``: the one append that makes
        # it so wakes the task (no check per span after that; the task looks at the queue
        # again after each report, ``_run``).
        if n + 1 == self.batch_size and self._due is not None:
            self._due.set()
        return True

    # -- the background task -------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self._due = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    async def close(self, timeout: float = 1.0) -> None:
        """Stop the task and try one last flush within ``timeout`` seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout)
        self._disconnect()

    async def _run(self) -> None:
        assert self._due is not None
        while True:
            # asyncio.timeout, not wait_for: no task made per wait (this loop runs up to
            # 1 / min_gap times a second under load).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._due.wait()
            self._due.clear()
            await self.flush()
            await asyncio.sleep(self.min_gap)
            if len(self.pending) >= self.batch_size:
                self._due.set()  # more arrived meanwhile (or the report was capped)

    async def flush(self) -> None:
        """Send what is pending now (at most ``max_batch``), as one report (spans that arrive
        meanwhile wait)."""
        if not self.pending:
            return
        batch = self.pending[: self.max_batch]
        self.pending = self.pending[self.max_batch :]
        # The body made here, off the request path: the texts joined and UTF-8 encoded in chunks.
        body, bad = report_pieces(batch)
        self.stats.spans_dropped += bad
        sent = len(batch) - bad
        if not sent:
            return
        try:
            async with asyncio.timeout(self.timeout):
                status = await self._post(body)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            self._disconnect()
            self.stats.reports_failed += 1
            self.stats.spans_dropped += sent
            return
        if status == 202:
            self.stats.reports_sent += 1
            self.stats.spans_sent += sent
        else:
            self.stats.reports_rejected += 1
            self.stats.spans_dropped += sent

    async def _post(self, body: list[bytes]) -> int:
        if self._conn is None:
            self._conn = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._conn
        head = (
            f"POST {SPANS_PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {sum(map(len, body))}\r\n\r\n"
        )
        body[0] = head.encode("latin-1") + body[0]  # the head and the "[": one small buffer
        writer.writelines(body)
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        length = 0
        close = parts[0] == b"HTTP/1.0"
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                close = True  # not expected from a collector; read nothing, reconnect
        if length:
            await reader.readexactly(length)
        if close:
            self._disconnect()
        return status

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None
