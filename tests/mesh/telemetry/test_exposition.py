"""Text exposition of the request store, from plain values."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.telemetry.exposition import (
    FOLD,
    Family,
    RequestMetrics,
    escape,
    format_value,
    label_text,
)


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
    with pytest.raises(ValueError):  # one value per histogram: two here
        s.record(("source", "200"), 1)
    with pytest.raises(ValueError):
        s.record_split((), (id(()), "source", "200"), 1, 2, 3)
    s.record(("source", "200"), 1, 2)  # what was refused left nothing half-recorded
    assert s.count(("source", "200")) == 1
    assert 'x_bytes_count{reporter="source",code="200"} 1' in s.render().splitlines()
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


def reference_histogram(bounds: tuple[float, ...], values: list[float]) -> dict[str, int]:
    """Cumulative bucket counts by the format's definition: values at or below each bound."""
    counts = {f"{b:g}": sum(1 for v in values if v <= b) for b in bounds}
    counts["+Inf"] = len(values)
    return counts


def rendered_histogram(text: str, family: str, code: str) -> dict[str, int]:
    found = re.findall(rf'{family}_bucket{{code="{code}",le="([^"]+)"}} (\d+)', text)
    return {le: int(n) for le, n in found}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(("200", "503")),
            # Halves: exact float sums whatever the order they are added in; bounds themselves
            # (le is inclusive) and values past the last bound (only +Inf).
            *[st.integers(0, 400).map(lambda n: n / 2) for _ in range(3)],
        ),
        max_size=3 * FOLD,
    ),
    st.randoms(use_true_random=False),
)
def test_batched_buckets_count_every_observation_as_the_format_defines(observations, rnd):
    """Observations wait in their series and are put in buckets in batches (``FOLD`` of them,
    or when read): whatever the mix of ``record``, ``record_split`` and ``record3``, and
    whether a read comes mid-batch, the rendered counts, buckets and sums are the format's."""
    bounds = (0.5, 1, 5, 10, 25, 50, 100, 150)
    names = (Family("a", "A."), Family("b", "B."), Family("c", "C."))
    m = RequestMetrics(Family("n", "N."), names, ("code",), bounds)
    prefix: tuple[str, ...] = ()
    seen: dict[str, list[tuple[float, float, float]]] = {"200": [], "503": []}
    for code, *values in observations:
        how = rnd.choice(("record", "split", "record3", "read"))
        if how == "record":
            m.record((code,), *values)
        elif how == "split":
            m.record_split(prefix, (id(prefix), code), *values)
        else:
            m.record3(prefix, (id(prefix), code), *values)
        seen[code].append(tuple(values))
        if how == "read":
            assert m.count((code,)) == len(seen[code])
    text = m.render()
    for code, rows in seen.items():
        if not rows:
            assert f'n{{code="{code}"}}' not in text
            continue
        assert f'n{{code="{code}"}} {len(rows)}' in text
        for h, family in enumerate(("a", "b", "c")):
            column = [row[h] for row in rows]
            assert rendered_histogram(text, family, code) == reference_histogram(bounds, column)
            assert f'{family}_sum{{code="{code}"}} {format_value(sum(column))}' in text
            assert f'{family}_count{{code="{code}"}} {len(rows)}' in text
