"""b3 context: parsing both header forms, making children, propagating."""

from __future__ import annotations

import random

import pytest

from mesh.telemetry import b3
from mesh.telemetry.b3 import B3Error, TraceContext

T64 = "463ac35c9f6413ad"
T128 = "463ac35c9f6413ad48485a3953bb6124"
S = "a2fb4a1d1a96d312"
P = "0020000000000001"


def test_multi_header_form():
    ctx = b3.parse(
        {"x-b3-traceid": T128, "x-b3-spanid": S, "x-b3-parentspanid": P, "x-b3-sampled": "1"}
    )
    assert ctx == TraceContext(T128, S, P, True, False)
    assert b3.parse({"x-b3-traceid": T64.upper(), "x-b3-spanid": S}) == TraceContext(T64, S)
    assert b3.parse({"x-b3-traceid": T64, "x-b3-spanid": S, "x-b3-flags": "1"}).debug
    assert b3.parse({"x-b3-traceid": T64, "x-b3-spanid": S, "x-b3-sampled": "true"}).sampled
    assert b3.parse({"x-b3-traceid": T64, "x-b3-spanid": S, "x-b3-sampled": "0"}).sampled is False
    # one of the two ids alone is no context
    assert b3.parse({"x-b3-traceid": T64}) is None
    assert b3.parse({}) is None


def test_single_header_form_wins():
    assert b3.parse({"b3": f"{T64}-{S}"}) == TraceContext(T64, S)
    assert b3.parse({"b3": f"{T128}-{S}-1-{P}", "x-b3-traceid": T64, "x-b3-spanid": P}) == (
        TraceContext(T128, S, P, True)
    )
    assert b3.parse({"b3": f"{T64}-{S}-d"}).debug
    assert b3.parse({"b3": "0"}) is None  # a decision without ids
    assert b3.sampling({"b3": "0"}) is False
    assert b3.sampling({"x-b3-sampled": "1"}) is True
    assert b3.sampling({}) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"x-b3-traceid": "abc", "x-b3-spanid": S},
        {"x-b3-traceid": "0" * 16, "x-b3-spanid": S},
        {"x-b3-traceid": T64, "x-b3-spanid": "zz" * 8},
        {"x-b3-traceid": T64, "x-b3-spanid": S, "x-b3-parentspanid": "12"},
        {"x-b3-traceid": T64, "x-b3-spanid": S, "x-b3-sampled": "yes"},
        {"b3": f"{T64}-{S}-x"},
        {"b3": f"{T64}"},
        {"b3": f"{T64}-{S}-1-{P}-extra"},
        {"b3": "2"},
    ],
    ids=["short", "zeros", "not-hex", "short-parent", "bad-sampled", "bad-flag", "no-span",
         "too-many", "bad-decision"],
)  # fmt: skip
def test_malformed_headers_say_why(headers):
    with pytest.raises(B3Error) as err:
        b3.parse(headers)
    assert str(err.value)


def test_new_trace_child_and_propagation_use_the_given_rng():
    rng = random.Random(7)
    root = b3.new_trace(rng, sampled=True)
    assert root.trace_id == root.span_id and root.parent_id is None  # Envoy: 64-bit trace id
    assert b3.new_trace(random.Random(7), sampled=True) == root  # seeded: reproducible
    wide = b3.new_trace(rng, sampled=True, trace_id_128bit=True)
    assert len(wide.trace_id) == 32 and wide.trace_id.endswith(wide.span_id)
    kid = b3.child(root, rng)
    assert kid.trace_id == root.trace_id and kid.parent_id == root.span_id
    assert kid.span_id != root.span_id and b3.is_id(kid.span_id, (16,))
    sent = dict(b3.propagation_headers(kid))
    assert sent == {
        "x-b3-traceid": root.trace_id,
        "x-b3-spanid": kid.span_id,
        "x-b3-parentspanid": root.span_id,
        "x-b3-sampled": "1",
    }
    assert b3.parse(sent) == kid  # round trip
    assert b3.parse({"b3": b3.single_header(kid)}) == kid
    assert b3.single_header(TraceContext(T64, S)) == f"{T64}-{S}"


def test_sampling_percent():
    rng = random.Random(1)
    assert all(b3.should_sample(100, rng) for _ in range(100))
    assert not any(b3.should_sample(0, rng) for _ in range(100))
    hits = sum(b3.should_sample(25, rng) for _ in range(10_000))
    # binomial n=10000 p=0.25: sd 43.3; 99.9 % two-sided = 3.29 sd
    assert abs(hits - 2500) <= 3.29 * 43.3
