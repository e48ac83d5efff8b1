"""The version split over time, for the live view: pure, the clock is passed in.

Primitives:

- ``RollingTally`` -- counters in one-second buckets (``add(labels, now)``), kept for
  ``history`` seconds; ``share(service, now)`` is the split over the last ``window`` seconds
  (``{"v1": 0.7, "v2": 0.3}``), ``second_share(service, now)`` the split of the last complete
  second, ``series(service, now)`` one per-second share per second for the chart, ``totals``
  the counts since the last reset. ``mark(version, now)`` records a config version change
  (drawn on the charts; ``since_mark`` counts from it). ``drain()`` / ``merge()`` move
  buckets from a Locust worker to the master.
- ``bar(share)`` -- a share as a bar of ten text blocks (Locust's tables render no HTML; a
  script in its page colours each bar in its version's colour).
- ``render_svg(series, ...)`` -- a stacked-area chart as one self-contained SVG string, as wide
  as its page: no JavaScript library, no CDN (the workshop room may have no internet).

Why per-second shares: a blue/green switch must show as a step the moment it happens, not as
a ten-second ramp; the rolling window is for the counts beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape

from loadtests.attribution import split_entry

DEFAULT_WINDOW = 10.0
DEFAULT_HISTORY = 300.0

# Fixed colours per version, the lab's everywhere: v1 blue, v2 amber, v3 red, as the product
# page's badges and the README say (services/productpage/static/bookinfo.css has the same
# three; a test keeps them equal).
VERSION_COLOURS: dict[str, str] = {
    "v1": "#2563eb",
    "v2": "#f59e0b",
    "v3": "#dc2626",
    "none": "#9ca3af",
}
_FALLBACK_COLOURS = ("#8b5cf6", "#ec4899", "#84cc16", "#0d9488")
# A share as a text bar (Locust's tables render text, not HTML); the page script live.py adds
# to Locust's UI colours each bar in its row's version colour.
FULL_BLOCK = "█"
EMPTY_BLOCK = "░"
BAR_CELLS = 10
MAX_MARKS = 50


def colour(version: str) -> str:
    if version in VERSION_COLOURS:
        return VERSION_COLOURS[version]
    return _FALLBACK_COLOURS[sum(map(ord, version)) % len(_FALLBACK_COLOURS)]


def bar(share: float) -> str:
    """``0.7`` -> seven full blocks, three light ones, then ``70%``."""
    cells = max(0, min(BAR_CELLS, round(share * BAR_CELLS)))
    return f"{FULL_BLOCK * cells}{EMPTY_BLOCK * (BAR_CELLS - cells)} {share:.0%}"


class RollingTally:
    """Per-second label counters over a bounded history."""

    def __init__(self, window: float = DEFAULT_WINDOW, history: float = DEFAULT_HISTORY) -> None:
        self.window = window
        self.history = history
        self.buckets: dict[int, Counter[str]] = {}
        self.totals: Counter[str] = Counter()
        # Config versions as they changed: (second, version), oldest first; and the counts
        # since the last change (the sticky canary's "left v2" means something per config).
        self.marks: list[tuple[int, int]] = []
        self.since_mark: Counter[str] = Counter()
        # Only a Locust worker ships its buckets to the master; elsewhere nobody drains, so
        # nothing is kept for it (the history bound alone would not cover this copy).
        self.track_undrained = False
        self._undrained: dict[int, Counter[str]] = {}

    def add(self, labels: Iterable[str], now: float, count: int = 1) -> None:
        second = int(now)
        bucket = self.buckets.setdefault(second, Counter())
        pending = self._undrained.setdefault(second, Counter()) if self.track_undrained else None
        for label in labels:
            bucket[label] += count
            self.totals[label] += count
            self.since_mark[label] += count
            if pending is not None:
                pending[label] += count
        self._expire(now)

    def mark(self, version: int, now: float) -> bool:
        """Record that the live config is ``version`` from ``now``; True when it changed."""
        if self.marks and self.marks[-1][1] == version:
            return False
        self.marks.append((int(now), version))
        del self.marks[:-MAX_MARKS]
        self.since_mark.clear()
        return True

    @property
    def config_version(self) -> int | None:
        return self.marks[-1][1] if self.marks else None

    def _expire(self, now: float) -> None:
        oldest = int(now - self.history)
        for second in [s for s in self.buckets if s < oldest]:
            del self.buckets[second]

    def reset(self) -> None:
        self.buckets.clear()
        self.totals.clear()
        self.since_mark.clear()
        self._undrained.clear()

    # -- worker -> master ------------------------------------------------------------------
    def drain(self) -> dict[str, dict[str, int]]:
        """The buckets added since the last drain, JSON-friendly (keys are strings)."""
        out = {str(second): dict(counter) for second, counter in self._undrained.items()}
        self._undrained.clear()
        return out

    def merge(self, drained: Mapping[str, Mapping[str, int]], now: float) -> None:
        for second, counter in drained.items():
            bucket = self.buckets.setdefault(int(second), Counter())
            for label, count in counter.items():
                bucket[label] += count
                self.totals[label] += count
                self.since_mark[label] += count
        self._expire(now)

    # -- views -----------------------------------------------------------------------------
    def window_counts(self, now: float, window: float | None = None) -> Counter[str]:
        """Label counts of the last ``window`` seconds, the current second included."""
        span = int(round(window if window is not None else self.window))
        end = int(now)
        counts: Counter[str] = Counter()
        for second in range(end - span + 1, end + 1):
            counts.update(self.buckets.get(second, ()))
        return counts

    @staticmethod
    def versions(counts: Mapping[str, int], service: str) -> dict[str, int]:
        """``{"v1": 70, "v2": 30}`` of one service out of label counts."""
        out: dict[str, int] = {}
        for label, count in counts.items():
            name, version = split_entry(label)
            if name == service and version and count:
                out[version] = out.get(version, 0) + count
        return out

    @staticmethod
    def shares(counts: Mapping[str, int], service: str) -> dict[str, float]:
        """``{"v1": 0.7, "v2": 0.3}`` of one service out of label counts (``{}``: none)."""
        versions = RollingTally.versions(counts, service)
        total = sum(versions.values())
        return {v: c / total for v, c in sorted(versions.items())} if total else {}

    def share(self, service: str, now: float) -> dict[str, float]:
        """The split over the last ``window`` seconds."""
        return self.shares(self.window_counts(now), service)

    def second_share(self, service: str, now: float) -> dict[str, float]:
        """The split of the last complete second (the current one is still filling)."""
        return self.shares(self.buckets.get(int(now) - 1, Counter()), service)

    def series(
        self, service: str, now: float, span: float | None = None
    ) -> list[tuple[int, dict[str, float]]]:
        """One point per complete second over the last ``span`` seconds (default: the
        history), each that second's own split; seconds without traffic give ``{}``."""
        end = int(now) - 1
        start = end - int(span if span is not None else self.history) + 1
        return [
            (second, self.shares(self.buckets.get(second, Counter()), service))
            for second in range(start, end + 1)
        ]


def render_svg(
    series: list[tuple[int, dict[str, float]]],
    *,
    title: str,
    marks: Sequence[tuple[int, int]] = (),
    width: int = 1200,
    height: int = 220,
    tick_seconds: int = 30,
) -> str:
    """A stacked-area chart of version shares (0..100 %) over time, as an SVG string.

    Each version is one polygon; versions stack in sorted order (v1 at the bottom), so a 70/30
    split shows a band boundary at 70 % and a rollback moves it back to 100 %. The time axis
    is labelled in seconds before now every ``tick_seconds``; ``marks`` (second, config
    version) within the span are dashed lines labelled ``v12``. The SVG scales to the width
    of its container (``width`` only sets the drawing's proportions)."""
    pad_left, pad_right, pad_top, pad_bottom = 48, 130, 30, 34
    plot_w = width - pad_left - pad_right
    plot_h = height - pad_top - pad_bottom
    versions = sorted({v for _, shares in series for v in shares})
    n = len(series)
    font = 'font-family="sans-serif"'

    def x(i: float) -> float:
        return pad_left + (plot_w * i / (n - 1) if n > 1 else 0.0)

    def y(fraction: float) -> float:
        return pad_top + plot_h * (1.0 - fraction)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_left}" y="20" font-size="18" {font} font-weight="bold">'
        f"{escape(title)}</text>",
        f'<rect x="{pad_left}" y="{pad_top}" width="{plot_w}" height="{plot_h}" '
        'fill="#f3f4f6" stroke="#d1d5db"/>',
    ]
    for fraction in (0.25, 0.5, 0.75):
        parts.append(
            f'<line x1="{pad_left}" x2="{pad_left + plot_w}" y1="{y(fraction):.1f}" '
            f'y2="{y(fraction):.1f}" stroke="#e5e7eb"/>'
        )
    for fraction in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{pad_left - 6}" y="{y(fraction) + 5:.1f}" font-size="14" '
            f'text-anchor="end" {font}>{int(fraction * 100)}%</text>'
        )
    if n > 1:
        # Time axis: seconds before now, so the room reads "the rollback was 20 s ago".
        last = series[-1][0]
        for i, (second, _) in enumerate(series):
            ago = last - second
            if ago % tick_seconds and i != 0:
                continue
            anchor = "end" if ago == 0 else ("start" if i == 0 else "middle")
            label = "now" if ago == 0 else f"-{ago} s"
            parts.append(
                f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{pad_top + plot_h}" '
                f'y2="{pad_top + plot_h + 5}" stroke="#6b7280"/>'
                f'<text x="{x(i):.1f}" y="{pad_top + plot_h + 20}" font-size="14" '
                f'text-anchor="{anchor}" {font} fill="#374151">{label}</text>'
            )
        parts.append(
            f'<text x="{pad_left + plot_w / 2:.0f}" y="{height - 1}" font-size="12" '
            f'text-anchor="middle" {font} fill="#6b7280">seconds ago (one share per second)'
            "</text>"
        )
    if n and versions:
        lower = [0.0] * n
        for version in versions:
            upper = [lower[i] + series[i][1].get(version, 0.0) for i in range(n)]
            # Seconds without traffic draw nothing (upper == lower), not a fake 0 %.
            top = " ".join(f"{x(i):.1f},{y(upper[i]):.1f}" for i in range(n))
            bottom = " ".join(f"{x(i):.1f},{y(lower[i]):.1f}" for i in reversed(range(n)))
            parts.append(
                f'<polygon points="{top} {bottom}" fill="{colour(version)}" '
                'fill-opacity="0.9" stroke="none"/>'
            )
            lower = upper
        latest = next((shares for _, shares in reversed(series) if shares), {})
        for row, version in enumerate(versions):
            label_y = pad_top + 16 + row * 24
            parts.append(
                f'<rect x="{pad_left + plot_w + 10}" y="{label_y - 13}" width="16" height="16" '
                f'fill="{colour(version)}"/>'
                f'<text x="{pad_left + plot_w + 32}" y="{label_y}" font-size="16" {font}>'
                f"{escape(version)} {latest.get(version, 0.0):.0%}</text>"
            )
    else:
        parts.append(
            f'<text x="{pad_left + plot_w / 2:.0f}" y="{pad_top + plot_h / 2:.0f}" '
            f'font-size="16" text-anchor="middle" {font} fill="#6b7280">'
            "no traffic yet: start a swarm</text>"
        )
    if n > 1:
        first = series[0][0]
        for second, version in marks:
            if not first <= second <= series[-1][0]:
                continue
            at = x(second - first)
            parts.append(
                f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{pad_top - 4}" y2="{pad_top + plot_h}" '
                'stroke="#111827" stroke-width="2" stroke-dasharray="6 4"/>'
                f'<text x="{at + 4:.1f}" y="{pad_top - 6}" font-size="14" {font} '
                f'font-weight="bold" fill="#111827">config v{version}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
