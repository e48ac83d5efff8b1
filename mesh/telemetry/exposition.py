"""Prometheus text exposition (format 0.0.4) of counters and histograms keyed by label tuples.

Primitives:

- ``RequestMetrics``: per label tuple, one request counter and one histogram per measured
  quantity (Istio's shape: ``istio_requests_total`` beside
  ``istio_request_duration_milliseconds``, ``istio_request_bytes``,
  ``istio_response_bytes``). ``record(key, ...)`` is the per-request call: one dict lookup,
  one ``bisect`` per histogram and a few list increments; buckets are stored per bucket and
  made cumulative only when rendered.
- ``escape(value)`` and ``label_text(names, values)``: label values as the format wants them.
- ``sample(name, labels, value)`` / ``family_header(name, kind, help)``: single lines, for the
  few gauges and counters a process renders by hand.

Why not ``prometheus_client``: its labelled metrics take a lock and a chain of dict lookups per
increment, several microseconds on a path whose whole per-hop budget is about 100 µs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LabelKey = tuple[str, ...]
# Entries of ``RequestMetrics.record_split``'s index (peer pairs x codes x flags in use).
SPLIT_INDEX = 4096


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

    A series is one list: ``[count, h0 buckets..., h0 sum, h1 buckets..., h1 sum, ...]``.
    A value above the last bound lands only in ``+Inf`` (which is the count).
    """

    __slots__ = (
        "counter", "histograms", "label_names", "buckets", "series", "_labels", "_nb", "_split",
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
        self.series: dict[LabelKey, list[float]] = {}
        self._labels: dict[LabelKey, str] = {}
        self._nb = len(self.buckets)
        # ``record_split``'s index: (id(prefix), *tail) -> (prefix, series). The entry holds
        # its prefix, so that id cannot be reused by another tuple while the entry exists.
        self._split: dict[tuple[object, ...], tuple[LabelKey, list[float]]] = {}

    def record(self, key: LabelKey, *values: float) -> None:
        """Count one request under ``key`` and observe ``values`` (one per histogram)."""
        series = self.series.get(key)
        if series is None:
            if len(key) != len(self.label_names):
                raise ValueError(f"{len(key)} label values for {len(self.label_names)} names")
            series = self.series[key] = [0.0] * (1 + len(self.histograms) * (self._nb + 1))
        series[0] += 1
        self._observe(series, values)

    def _observe(self, series: list[float], values: tuple[float, ...]) -> None:
        """Each of ``values`` into its histogram's bucket, count and sum in ``series``."""
        nb = self._nb
        buckets = self.buckets
        base = 1
        for value in values:
            idx = bisect_left(buckets, value)
            if idx < nb:
                series[base + idx] += 1
            series[base + nb] += value
            base += nb + 1

    def record_split(self, prefix: LabelKey, tail: tuple[object, ...], *values: float) -> None:
        """``record(prefix + tail[1:], *values)`` where ``tail`` is ``(id(prefix), *rest)``,
        for a ``prefix`` tuple reused from request to request (a proxy's cached label
        prefix): the series is found by the prefix's identity and the short rest, so no
        long key is built, hashed and compared per request. Bounded: the index is rebuilt
        when it outgrows ``SPLIT_INDEX``; the series live in ``series`` as with ``record``."""
        entry = self._split.get(tail)
        if entry is None or entry[0] is not prefix:
            # The status may be an int (rendered as its digits by ``label_text``).
            key: LabelKey = prefix + tail[1:]  # type: ignore[operator]
            if len(self._split) >= SPLIT_INDEX:
                self._split.clear()
            known = key in self.series
            if not known:
                self.record(key, *values)
            series = self.series[key]
            self._split[tail] = (prefix, series)
            if not known:
                return
        else:
            series = entry[1]
        series[0] += 1
        if len(values) == 3:  # Istio's three histograms, unrolled (the per-request case)
            nb = self._nb
            buckets = self.buckets
            a, b, c = values
            idx = bisect_left(buckets, a)
            if idx < nb:
                series[1 + idx] += 1
            series[1 + nb] += a
            base = nb + 2
            idx = bisect_left(buckets, b)
            if idx < nb:
                series[base + idx] += 1
            series[base + nb] += b
            base += nb + 1
            idx = bisect_left(buckets, c)
            if idx < nb:
                series[base + idx] += 1
            series[base + nb] += c
            return
        self._observe(series, values)

    def count(self, key: LabelKey) -> int:
        series = self.series.get(key)
        return int(series[0]) if series else 0

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
