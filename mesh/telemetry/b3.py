"""b3 trace context: the ``x-b3-*`` headers (and the single ``b3`` header) Envoy propagates.

Primitives: ``TraceContext`` (trace id, span id, parent, sampling), ``parse(headers)`` (the
context a request carries, ``None`` when it carries none, ``B3Error`` when it is malformed),
``sampling(headers)`` (a caller's decision, which may come without ids), ``new_trace`` and
``child`` (ids from a ``random.Random`` passed in), ``propagation_headers(ctx)`` and
``single_header(ctx)`` (what goes upstream).

Rules, as openzipkin/b3-propagation and Envoy's extractor
(source/extensions/tracers/zipkin/span_context_extractor.cc) have them:

- trace id 16 or 32 hex characters, span and parent ids 16; all zeros is not an id;
- single form ``{trace}-{span}[-{sampling}[-{parent}]]``, or just ``{sampling}``;
  sampling is ``1``, ``0`` or ``d`` (debug, which implies sampled);
- multi form: ``x-b3-sampled`` ``1``/``0`` (``true``/``false`` from old tracers),
  ``x-b3-flags: 1`` = debug; the single header wins when both are present;
- a trace id without a span id (or the reverse) is no context at all.

Header names are looked up lowercase: callers pass a mapping with lowercase keys.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

TRACE_ID = "x-b3-traceid"
SPAN_ID = "x-b3-spanid"
PARENT_SPAN_ID = "x-b3-parentspanid"
SAMPLED = "x-b3-sampled"
FLAGS = "x-b3-flags"
SINGLE = "b3"
HEADERS = (TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS, SINGLE)

_HEX = frozenset("0123456789abcdef")


class B3Error(ValueError):
    """A b3 header that is present but malformed (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class TraceContext:
    """Where a request is in a trace. ``sampled`` None = no decision made yet."""

    trace_id: str
    span_id: str
    parent_id: str | None = None
    sampled: bool | None = None
    debug: bool = False

    @property
    def recorded(self) -> bool:
        """Should spans of this context be reported?"""
        return bool(self.sampled) or self.debug


def is_id(text: str, lengths: tuple[int, ...]) -> bool:
    """Lowercase hex of one of ``lengths`` and not all zeros."""
    return len(text) in lengths and _HEX.issuperset(text) and text.strip("0") != ""


def _id(text: str, what: str, lengths: tuple[int, ...]) -> str:
    lowered = text.strip().lower()
    if not is_id(lowered, lengths):
        sizes = " or ".join(str(n) for n in lengths)
        raise B3Error(f"{what} {text!r}: expected {sizes} hex characters, not all zeros")
    return lowered


def _sampling_flag(text: str, what: str) -> tuple[bool, bool]:
    """(sampled, debug) of a ``1``/``0``/``d`` flag."""
    if text == "1":
        return True, False
    if text == "0":
        return False, False
    if text == "d":
        return True, True
    raise B3Error(f"{what} {text!r}: expected 1, 0 or d")


def parse_single(value: str) -> TraceContext | tuple[bool, bool]:
    """The ``b3`` header: a context, or (sampled, debug) when it carries only a decision."""
    text = value.strip()
    if len(text) == 1:
        return _sampling_flag(text, "b3 sampling")
    parts = text.split("-")
    if len(parts) < 2 or len(parts) > 4:
        raise B3Error(f"b3 {value!r}: expected trace-span[-sampling[-parent]]")
    trace_id = _id(parts[0], "b3 trace id", (16, 32))
    span_id = _id(parts[1], "b3 span id", (16,))
    sampled: bool | None = None
    debug = False
    parent: str | None = None
    if len(parts) >= 3:
        sampled, debug = _sampling_flag(parts[2], "b3 sampling")
    if len(parts) == 4:
        parent = _id(parts[3], "b3 parent id", (16,))
    return TraceContext(trace_id, span_id, parent, sampled, debug)


def _multi_sampling(headers: Mapping[str, str]) -> tuple[bool | None, bool]:
    debug = headers.get(FLAGS, "").strip() == "1"
    raw = headers.get(SAMPLED)
    if raw is None:
        return (True if debug else None), debug
    flag = raw.strip().lower()
    if flag in ("1", "true"):
        return True, debug
    if flag in ("0", "false"):
        return debug, debug  # debug overrides a "do not sample"
    raise B3Error(f"{SAMPLED} {raw!r}: expected 1 or 0")


def sampling(headers: Mapping[str, str]) -> bool | None:
    """The caller's sampling decision (None: none made), with or without trace ids."""
    single = headers.get(SINGLE)
    if single is not None:
        parsed = parse_single(single)
        if isinstance(parsed, tuple):
            return parsed[0]
        return parsed.sampled
    return _multi_sampling(headers)[0]


def parse(headers: Mapping[str, str]) -> TraceContext | None:
    """The trace context of a request (lowercase header names), or None when it has none."""
    single = headers.get(SINGLE)
    if single is not None:
        parsed = parse_single(single)
        return parsed if isinstance(parsed, TraceContext) else None
    raw_trace = headers.get(TRACE_ID)
    raw_span = headers.get(SPAN_ID)
    if raw_trace is None or raw_span is None:
        return None
    trace_id = _id(raw_trace, TRACE_ID, (16, 32))
    span_id = _id(raw_span, SPAN_ID, (16,))
    raw_parent = headers.get(PARENT_SPAN_ID, "").strip()
    parent = _id(raw_parent, PARENT_SPAN_ID, (16,)) if raw_parent else None
    sampled, debug = _multi_sampling(headers)
    return TraceContext(trace_id, span_id, parent, sampled, debug)


def random_id(rng: random.Random) -> str:
    """A 64-bit id as 16 lowercase hex characters, never all zeros."""
    while True:
        bits = rng.getrandbits(64)
        if bits:
            return f"{bits:016x}"


def new_trace(rng: random.Random, *, sampled: bool, trace_id_128bit: bool = False) -> TraceContext:
    """A root context: fresh trace and span ids (Envoy: trace id = span id unless 128-bit)."""
    span_id = random_id(rng)
    trace_id = random_id(rng) + span_id if trace_id_128bit else span_id
    return TraceContext(trace_id, span_id, None, sampled)


def child(ctx: TraceContext, rng: random.Random) -> TraceContext:
    """A new span under ``ctx`` (the caller's proxy starting a client span)."""
    return TraceContext(ctx.trace_id, random_id(rng), ctx.span_id, ctx.sampled, ctx.debug)


def propagation_headers(ctx: TraceContext) -> list[tuple[str, str]]:
    """The multi-header form Envoy sends upstream."""
    out = [(TRACE_ID, ctx.trace_id), (SPAN_ID, ctx.span_id)]
    if ctx.parent_id:
        out.append((PARENT_SPAN_ID, ctx.parent_id))
    if ctx.debug:
        out.append((FLAGS, "1"))
    elif ctx.sampled is not None:
        out.append((SAMPLED, "1" if ctx.sampled else "0"))
    return out


def single_header(ctx: TraceContext) -> str:
    """The ``b3`` header value."""
    text = f"{ctx.trace_id}-{ctx.span_id}"
    flag = "d" if ctx.debug else ("1" if ctx.sampled else "0") if ctx.sampled is not None else ""
    if flag:
        text += f"-{flag}"
        if ctx.parent_id:
            text += f"-{ctx.parent_id}"
    return text


def should_sample(percent: float, rng: random.Random) -> bool:
    """A local sampling decision (Istio's ``sampling``, 0-100 %, 1 % by default; 100 here)."""
    if percent >= 100.0:
        return True
    if percent <= 0.0:
        return False
    return rng.random() * 100.0 < percent
