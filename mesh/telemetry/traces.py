"""The collector's memory: the last N traces, and the queries of Zipkin's v2 API.

Primitives: ``TraceStore.add(spans)`` (keeps at most ``max_traces`` traces, ``max_spans``
spans per trace and about ``max_bytes`` of span data: the oldest traces go first, spans
beyond a trace's cap are dropped and counted, so a flood never grows it) and the reads
``services()``, ``span_names(service)``, ``trace(id)``, ``query(...)``.

Zipkin's query rules (zipkin2-api.yaml ``/traces``): a trace matches when one of its spans
has ``serviceName`` as its local service, ``spanName`` as its name and a duration of at least
``minDuration`` (at most ``maxDuration``) microseconds; the trace's first timestamp lies in
``[endTs - lookback, endTs]`` (milliseconds); newest first, at most ``limit``. A trace's spans
come sorted by timestamp. Time is passed in: the store reads no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from mesh.telemetry.zipkin import Span

DEFAULT_MAX_TRACES = 1000
DEFAULT_MAX_SPANS = 500
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
SPAN_OVERHEAD = 400  # bytes a small span costs in Python objects, roughly


def span_weight(span: Span) -> int:
    """About how many bytes ``span`` holds (its strings plus a fixed overhead)."""
    weight = SPAN_OVERHEAD + len(span.name or "")
    for key, value in span.tags.items():
        weight += len(key) + len(value) + 100
    for annotation in span.annotations:
        weight += len(annotation.value) + 80
    return weight


@dataclass
class _Trace:
    spans: list[Span] = field(default_factory=list)
    weight: int = 0
    first_us: int | None = None


@dataclass(frozen=True)
class Query:
    """``GET /api/v2/traces`` parameters, times in Zipkin's units (ms; durations in µs)."""

    end_ts_ms: int
    lookback_ms: int
    service_name: str | None = None
    span_name: str | None = None
    min_duration_us: int | None = None
    max_duration_us: int | None = None
    limit: int = 10


class TraceStore:
    def __init__(
        self,
        max_traces: int = DEFAULT_MAX_TRACES,
        max_spans: int = DEFAULT_MAX_SPANS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_traces < 1 or max_spans < 1 or max_bytes < 1:
            raise ValueError("trace store limits must be positive")
        self.max_traces = max_traces
        self.max_spans = max_spans
        self.max_bytes = max_bytes
        self.traces: OrderedDict[str, _Trace] = OrderedDict()
        self.weight = 0
        self.accepted = 0
        self.dropped = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.traces)

    @property
    def span_count(self) -> int:
        return sum(len(t.spans) for t in self.traces.values())

    def add(self, spans: Iterable[Span]) -> int:
        """Keep ``spans``; returns how many were kept (the rest are counted in ``dropped``)."""
        kept = 0
        for span in spans:
            trace = self.traces.get(span.trace_id)
            if trace is None:
                trace = self.traces[span.trace_id] = _Trace()
                while len(self.traces) > self.max_traces:
                    self._evict_oldest()
            elif len(trace.spans) >= self.max_spans:
                self.dropped += 1
                continue
            weight = span_weight(span)
            trace.spans.append(span)
            trace.weight += weight
            self.weight += weight
            if span.timestamp is not None and (
                trace.first_us is None or span.timestamp < trace.first_us
            ):
                trace.first_us = span.timestamp
            kept += 1
            while self.weight > self.max_bytes and len(self.traces) > 1:
                self._evict_oldest()
        self.accepted += kept
        return kept

    def _evict_oldest(self) -> None:
        _, trace = self.traces.popitem(last=False)
        self.weight -= trace.weight
        self.evicted += 1

    # -- reads ----------------------------------------------------------------------------

    def services(self) -> list[str]:
        names = {
            span.service_name for t in self.traces.values() for span in t.spans if span.service_name
        }
        return sorted(names)

    def remote_services(self, service: str) -> list[str]:
        names = {
            span.remote_endpoint.service_name
            for t in self.traces.values()
            for span in t.spans
            if span.service_name == service
            and span.remote_endpoint is not None
            and span.remote_endpoint.service_name
        }
        return sorted(names)

    def span_names(self, service: str) -> list[str]:
        service = service.lower()
        names = {
            span.name
            for t in self.traces.values()
            for span in t.spans
            if span.service_name == service and span.name
        }
        return sorted(names)

    def trace(self, trace_id: str) -> list[Span] | None:
        trace = self.traces.get(trace_id.lower())
        return _sorted(trace.spans) if trace is not None else None

    def query(self, q: Query) -> list[list[Span]]:
        low_us = (q.end_ts_ms - q.lookback_ms) * 1000
        high_us = q.end_ts_ms * 1000
        service = q.service_name.lower() if q.service_name else None
        span_name = q.span_name.lower() if q.span_name and q.span_name != "all" else None
        found: list[tuple[int, list[Span]]] = []
        for trace in self.traces.values():
            if trace.first_us is None or not low_us <= trace.first_us <= high_us:
                continue
            if not any(_matches(span, service, span_name, q) for span in trace.spans):
                continue
            found.append((trace.first_us, trace.spans))
        found.sort(key=lambda item: item[0], reverse=True)
        return [_sorted(spans) for _, spans in found[: max(0, q.limit)]]


def _matches(span: Span, service: str | None, name: str | None, q: Query) -> bool:
    if service is not None and span.service_name != service:
        return False
    if name is not None and span.name != name:
        return False
    if q.min_duration_us is not None and (span.duration or 0) < q.min_duration_us:
        return False
    if q.max_duration_us is not None and (span.duration or 0) > q.max_duration_us:
        return False
    return True


def _sorted(spans: list[Span]) -> list[Span]:
    # Zipkin: ascending by timestamp; at equal times the parent (shorter id chain) first,
    # then the CLIENT before the SERVER that shares its id.
    return sorted(
        spans,
        key=lambda s: (s.timestamp or 0, s.parent_id is not None, s.kind != "CLIENT"),
    )
