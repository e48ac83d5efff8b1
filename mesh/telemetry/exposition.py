"""Prometheus text exposition (format 0.0.4) of counters and histograms keyed by label tuples.

Primitives:

- ``RequestMetrics``: per label tuple, one request counter and one histogram per measured
  quantity (Istio's shape: ``istio_requests_total`` beside
  ``istio_request_duration_milliseconds``, ``istio_request_bytes``,
  ``istio_response_bytes``). ``record(key, ...)`` / ``record_split`` is the per-request call:
  one dict lookup and one list append per histogram. Observations are put in buckets in
  batches (every ``FOLD`` observations of a series, and before any read): sorted, then one
  ``bisect`` per bucket bound, a fraction of what one ``bisect`` and three float updates per
  observation cost. Buckets are stored per bucket and made cumulative only when rendered.
- ``escape(value)`` and ``label_text(names, values)``: label values as the format wants them.
- ``sample(name, labels, value)`` / ``family_header(name, kind, help)``: single lines, for the
  few gauges and counters a process renders by hand.

Why not ``prometheus_client``: its labelled metrics take a lock and a chain of dict lookups per
increment, several microseconds on a path whose whole per-hop budget is about 100 µs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LabelKey = tuple[str, ...]
# Entries of ``RequestMetrics.record_split``'s index (peer pairs x codes x flags in use).
SPLIT_INDEX = 4096
# Observations a series holds before they are put in buckets (``RequestMetrics._fold``): the
# larger, the cheaper per request; each holds a float (24 bytes) and a slot (8) per histogram.
FOLD = 128


def escape(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_text(names: Iterable[str], values: Iterable[object]) -> str:
    """``a="x",b="y"`` (no braces)."""
    return ",".join(f'{n}="{escape(str(v))}"' for n, v in zip(names, values, strict=True))


def format_bound(bound: float) -> str:
    """A bucket bound as Envoy prints it: ``0.5``, ``1``, ``3.6e+06``."""
    return f"{bound:g}"


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, floats in full."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def family_header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def sample(name: str, labels: str, value: float) -> str:
    return (
        f"{name}{{{labels}}} {format_value(value)}" if labels else f"{name} {format_value(value)}"
    )


@dataclass(frozen=True)
class Family:
    """A metric family's name and help text."""

    name: str
    help: str


class RequestMetrics:
    """One counter and ``len(histograms)`` histograms per label tuple.

    A series is one list: ``[count, h0 buckets..., h0 sum, h1 buckets..., h1 sum, ...,
    h0 pending, h1 pending, ...]``: the observations not yet in buckets are kept, one list per
    histogram, at the end, and the count and buckets include them only once folded
    (``_fold``), which every read does first. A value above the last bound lands only in
    ``+Inf`` (which is the count).
    """

    __slots__ = (
        "counter", "histograms", "label_names", "buckets", "series", "_labels", "_nb", "_split",
        "_first_pending",
    )  # fmt: skip

    def __init__(
        self,
        counter: Family,
        histograms: Sequence[Family],
        label_names: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        if list(buckets) != sorted(set(buckets)):
            raise ValueError("histogram buckets must be strictly increasing")
        self.counter = counter
        self.histograms = tuple(histograms)
        self.label_names = tuple(label_names)
        self.buckets = tuple(float(b) for b in buckets)
        self.series: dict[LabelKey, list] = {}  # type: ignore[type-arg]
        self._labels: dict[LabelKey, str] = {}
        self._nb = len(self.buckets)
        self._first_pending = 1 + len(self.histograms) * (self._nb + 1)
        # ``record_split``'s index: (id(prefix), *tail) -> (prefix, series, *its pending
        # lists). The entry holds its prefix, so that id cannot be reused by another tuple
        # while the entry exists.
        self._split: dict[tuple[object, ...], tuple] = {}  # type: ignore[type-arg]

    def _series(self, key: LabelKey) -> list:  # type: ignore[type-arg]
        series = self.series.get(key)
        if series is None:
            if len(key) != len(self.label_names):
                raise ValueError(f"{len(key)} label values for {len(self.label_names)} names")
            series = self.series[key] = [0] * self._first_pending + [[] for _ in self.histograms]
            for h in range(len(self.histograms)):
                series[(h + 1) * (self._nb + 1)] = 0.0  # the sums are floats
        return series

    def record(self, key: LabelKey, *values: float) -> None:
        """Count one request under ``key`` and observe ``values`` (one per histogram)."""
        self._check(values)
        series = self._series(key)
        first = self._first_pending
        for pending, value in zip(series[first:], values, strict=True):
            pending.append(value)
        if len(series[first]) >= FOLD:
            self._fold(series)

    def _check(self, values: tuple[float, ...]) -> None:
        if len(values) != len(self.histograms):
            raise ValueError(f"{len(values)} values for {len(self.histograms)} histograms")

    def record_split(self, prefix: LabelKey, tail: tuple[object, ...], *values: float) -> None:
        """``record(prefix + tail[1:], *values)`` where ``tail`` is ``(id(prefix), *rest)``,
        for a ``prefix`` tuple reused from request to request (a proxy's cached label
        prefix): the series is found by the prefix's identity and the short rest, so no
        long key is built, hashed and compared per request. Bounded: the index is rebuilt
        when it outgrows ``SPLIT_INDEX``; the series live in ``series`` as with ``record``."""
        self._check(values)
        entry = self._split.get(tail)
        if entry is None or entry[0] is not prefix:
            entry = self._index(prefix, tail)
        for pending, value in zip(entry[2:], values, strict=True):
            pending.append(value)
        if len(entry[2]) >= FOLD:
            self._fold(entry[1])

    def record3(
        self, prefix: LabelKey, tail: tuple[object, ...], a: float, b: float, c: float
    ) -> None:
        """``record_split`` for three histograms (Istio's shape, the per-request call),
        unrolled."""
        entry = self._split.get(tail)
        if entry is None or entry[0] is not prefix:
            entry = self._index(prefix, tail)
        _, series, pending, pending_b, pending_c = entry
        pending.append(a)
        pending_b.append(b)
        pending_c.append(c)
        if len(pending) >= FOLD:
            self._fold(series)

    def _index(self, prefix: LabelKey, tail: tuple[object, ...]) -> tuple:  # type: ignore[type-arg]
        """``record_split``'s index entry for ``prefix`` and ``tail``, made."""
        # The status may be an int (rendered as its digits by ``label_text``).
        key: LabelKey = prefix + tail[1:]  # type: ignore[operator]
        if len(self._split) >= SPLIT_INDEX:
            self._split.clear()
        series = self._series(key)
        entry = self._split[tail] = (prefix, series, *series[self._first_pending :])
        return entry

    def _fold(self, series: list) -> None:  # type: ignore[type-arg]
        """Put a series' pending observations in its buckets, count and sums: each
        histogram's sorted once, then the number at or below each bound is one ``bisect``
        (a bucket holds the values above the bound before it, up to its own)."""
        first = self._first_pending
        n = len(series[first])
        if not n:
            return
        nb = self._nb
        buckets = self.buckets
        for h in range(len(self.histograms)):
            pending = series[first + h]
            pending.sort()
            base = 1 + h * (nb + 1)
            below = 0
            for i, bound in enumerate(buckets):
                upto = bisect_right(pending, bound)
                if upto != below:
                    series[base + i] += upto - below
                    if upto == n:
                        break
                    below = upto
            series[base + nb] += sum(pending)
            pending.clear()
        series[0] += n

    def fold_all(self) -> None:
        """Every series' pending observations into its buckets (before a read)."""
        for series in self.series.values():
            self._fold(series)

    def count(self, key: LabelKey) -> int:
        series = self.series.get(key)
        if not series:
            return 0
        self._fold(series)
        return int(series[0])

    def clear(self) -> None:
        self.series.clear()
        self._split.clear()
        self._labels.clear()

    def _label(self, key: LabelKey) -> str:
        text = self._labels.get(key)
        if text is None:
            text = self._labels[key] = label_text(self.label_names, key)
        return text

    def render_lines(self) -> list[str]:
        """The text exposition of every family, one line per element."""
        self.fold_all()
        out = family_header(self.counter.name, "counter", self.counter.help)
        name = self.counter.name
        items = list(self.series.items())
        for key, series in items:
            out.append(f"{name}{{{self._label(key)}}} {int(series[0])}")
        nb = self._nb
        bounds = [format_bound(b) for b in self.buckets]
        for h, family in enumerate(self.histograms):
            out.extend(family_header(family.name, "histogram", family.help))
            base = 1 + h * (nb + 1)
            bucket = f"{family.name}_bucket"
            for key, series in items:
                labels = self._label(key)
                cumulative = 0
                for i in range(nb):
                    cumulative += int(series[base + i])
                    out.append(f'{bucket}{{{labels},le="{bounds[i]}"}} {cumulative}')
                count = int(series[0])
                out.append(f'{bucket}{{{labels},le="+Inf"}} {count}')
                out.append(f"{family.name}_sum{{{labels}}} {format_value(series[base + nb])}")
                out.append(f"{family.name}_count{{{labels}}} {count}")
        return out

    def render(self) -> str:
        return "\n".join(self.render_lines()) + "\n"
