"""Text exposition of the request store, from plain values."""

from __future__ import annotations

import re

import pytest

from mesh.telemetry.exposition import Family, RequestMetrics, escape, format_value, label_text


def store() -> RequestMetrics:
    return RequestMetrics(
        Family("x_requests_total", "Requests."),
        (Family("x_duration_ms", "Duration."), Family("x_bytes", "Bytes.")),
        ("reporter", "code"),
        (1, 10, 100),
    )


def test_counter_and_histograms_render_with_cumulative_buckets():
    s = store()
    s.record(("source", "200"), 0.5, 2000)
    s.record(("source", "200"), 10, 5)
    s.record(("source", "200"), 1000, 5)  # above the last bound: only +Inf
    s.record(("source", "503"), 3, 0)
    lines = s.render().splitlines()
    assert "# TYPE x_requests_total counter" in lines
    assert "# TYPE x_duration_ms histogram" in lines
    assert 'x_requests_total{reporter="source",code="200"} 3' in lines
    assert 'x_requests_total{reporter="source",code="503"} 1' in lines
    assert 'x_duration_ms_bucket{reporter="source",code="200",le="1"} 1' in lines
    assert (
        'x_duration_ms_bucket{reporter="source",code="200",le="10"} 2' in lines
    )  # le is inclusive
    assert 'x_duration_ms_bucket{reporter="source",code="200",le="100"} 2' in lines
    assert 'x_duration_ms_bucket{reporter="source",code="200",le="+Inf"} 3' in lines
    assert 'x_duration_ms_sum{reporter="source",code="200"} 1010.5' in lines
    assert 'x_duration_ms_count{reporter="source",code="200"} 3' in lines
    assert 'x_bytes_bucket{reporter="source",code="200",le="10"} 2' in lines
    assert 'x_bytes_sum{reporter="source",code="503"} 0' in lines
    assert s.count(("source", "200")) == 3


def test_every_line_is_valid_exposition():
    s = store()
    s.record(("a\\b", 'say "hi"\n'), 1, 1)
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="([^"\\]|\\.)*",?)*\})? \S+$')
    for line in s.render().splitlines():
        assert line.startswith("# ") or sample.match(line), line
    assert 'reporter="a\\\\b",code="say \\"hi\\"\\n"' in s.render()


def test_wrong_label_count_and_bad_buckets_are_refused():
    s = store()
    with pytest.raises(ValueError):
        s.record(("source",), 1, 1)
    with pytest.raises(ValueError):
        RequestMetrics(Family("a", "a"), (), ("x",), (10, 1))


def test_helpers():
    assert escape('a"b') == 'a\\"b'
    assert label_text(("a", "b"), (1, "x")) == 'a="1",b="x"'
    assert format_value(3.0) == "3" and format_value(0.25) == "0.25"


def test_record_split_is_record_of_the_joined_key():
    """The per-request path (a cached prefix found by identity) counts exactly what
    ``record`` of the whole key counts, through index overflow and ``clear``."""
    import mesh.telemetry.exposition as exposition

    plain, split = store(), store()
    prefixes = [("source",), ("destination",)]
    samples = [(0, "200", 0.5, 2000), (1, "503", 3, 0), (0, "200", 10, 5), (0, "404", 1000, 5)]
    for i, code, ms, size in samples * 3:
        prefix = prefixes[i]
        plain.record((*prefix, code), ms, size)
        split.record_split(prefix, (id(prefix), code), ms, size)
    assert split.render() == plain.render()
    # A prefix equal to a known one but another object: same series, no stale entry used.
    copy = tuple(["source"])
    split.record_split(copy, (id(copy), "200"), 1, 1)
    plain.record(("source", "200"), 1, 1)
    assert split.render() == plain.render()
    old, exposition.SPLIT_INDEX = exposition.SPLIT_INDEX, 2  # the index stays bounded
    try:
        for code in ("201", "202", "203"):
            split.record_split(prefixes[0], (id(prefixes[0]), code), 1, 1)
            plain.record(("source", code), 1, 1)
        assert len(split._split) <= 2 and split.render() == plain.render()
    finally:
        exposition.SPLIT_INDEX = old
    split.clear()
    split.record_split(prefixes[0], (id(prefixes[0]), "200"), 1, 1)
    assert split.count(("source", "200")) == 1


def test_record_split_with_three_histograms_matches_record():
    """The unrolled three-histogram case (Istio's shape) counts what ``record`` counts."""
    names = (Family("a", "A."), Family("b", "B."), Family("c", "C."))
    plain = RequestMetrics(Family("n", "N."), names, ("code",), (1, 10, 100))
    split = RequestMetrics(Family("n", "N."), names, ("code",), (1, 10, 100))
    prefix: tuple[str, ...] = ()
    for values in ((0.5, 10.0, 1000.0), (100.0, 0.0, 3.0), (1e9, 1.0, 10.0)) * 2:
        plain.record(("200",), *values)
        split.record_split(prefix, (id(prefix), "200"), *values)
    assert split.render() == plain.render()
