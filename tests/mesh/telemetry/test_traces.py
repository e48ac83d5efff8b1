"""The collector's bounded trace memory and Zipkin's query rules."""

from __future__ import annotations

from mesh.telemetry.traces import Query, TraceStore
from mesh.telemetry.zipkin import Endpoint, Span

MS = 1000  # microseconds


def span(
    trace: int,
    sid: int,
    service: str,
    ts_ms: int,
    dur_ms: int,
    name: str = "op",
    parent: int | None = None,
) -> Span:
    return Span(
        trace_id=f"{trace:016x}",
        id=f"{sid:016x}",
        parent_id=f"{parent:016x}" if parent else None,
        name=name,
        kind="SERVER",
        timestamp=ts_ms * MS,
        duration=dur_ms * MS,
        local_endpoint=Endpoint(service),
    )


def test_queries_follow_zipkin():
    store = TraceStore()
    store.add(
        [span(1, 1, "gateway", 1000, 30), span(1, 2, "reviews", 1005, 2600, "slow", parent=1)]
    )
    store.add([span(2, 3, "gateway", 2000, 10), span(2, 4, "details", 2001, 5, parent=3)])
    store.add([span(3, 5, "gateway", 9000, 10)])
    assert store.services() == ["details", "gateway", "reviews"]
    assert store.span_names("reviews") == ["slow"]
    everything = Query(end_ts_ms=10_000, lookback_ms=10_000)
    assert [t[0].trace_id for t in store.query(everything)] == [f"{i:016x}" for i in (3, 2, 1)]
    assert len(store.query(Query(10_000, 10_000, limit=1))) == 1
    slow = store.query(Query(10_000, 10_000, min_duration_us=2500 * MS))
    assert [t[0].trace_id for t in slow] == [f"{1:016x}"]
    by_service = store.query(Query(10_000, 10_000, service_name="details"))
    assert [t[0].trace_id for t in by_service] == [f"{2:016x}"]
    named = store.query(Query(10_000, 10_000, service_name="reviews", span_name="slow"))
    assert len(named) == 1 and [s.id for s in named[0]] == [f"{1:016x}", f"{2:016x}"]
    window = store.query(Query(end_ts_ms=2500, lookback_ms=1000))
    assert [t[0].trace_id for t in window] == [f"{2:016x}"]
    assert store.trace(f"{1:016X}") is not None and store.trace("ffffffffffffffff") is None


def test_a_flood_never_grows_the_store():
    store = TraceStore(max_traces=50, max_spans=10, max_bytes=10_000_000)
    for i in range(1, 5001):
        store.add([span(i, i, "svc", i, 1)])
    assert len(store) == 50 and store.evicted == 4950
    assert store.trace(f"{5000:016x}") is not None and store.trace(f"{1:016x}") is None
    for i in range(100):  # one trace flooded with spans
        store.add([span(5000, 10_000 + i, "svc", 5000, 1)])
    assert len(store.trace(f"{5000:016x}")) == 10 and store.dropped == 91


def test_byte_budget_evicts_oldest_traces():
    store = TraceStore(max_traces=1000, max_spans=1000, max_bytes=50_000)
    big = {f"k{i}": "v" * 500 for i in range(10)}
    for i in range(1, 200):
        s = span(i, i, "svc", i, 1)
        store.add([Span(**{**{f: getattr(s, f) for f in s.__slots__}, "tags": big})])
    assert store.weight <= 50_000 and len(store) < 20
