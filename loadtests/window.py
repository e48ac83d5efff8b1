"""The version split over time, for the live view: pure, the clock is passed in.

Primitives:

- ``RollingTally`` -- counters in one-second buckets (``add(labels, now)``), kept for
  ``history`` seconds; ``share(service, now)`` is the split over the last ``window`` seconds
  (``{"v1": 0.7, "v2": 0.3}``), ``series(service, now)`` one such share per second for the
  chart, ``totals`` the counts since the last reset. ``drain()`` / ``merge()`` move buckets
  from a Locust worker to the master.
- ``render_svg(series, ...)`` -- a stacked-area chart as one self-contained SVG string: no
  JavaScript library, no CDN (the workshop room may have no internet).

Why a rolling window: the room must see a 70/30 canary appear and a rollback swing back
within seconds, which a share over the whole run would hide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
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


def colour(version: str) -> str:
    if version in VERSION_COLOURS:
        return VERSION_COLOURS[version]
    return _FALLBACK_COLOURS[sum(map(ord, version)) % len(_FALLBACK_COLOURS)]


class RollingTally:
    """Per-second label counters over a bounded history."""

    def __init__(self, window: float = DEFAULT_WINDOW, history: float = DEFAULT_HISTORY) -> None:
        self.window = window
        self.history = history
        self.buckets: dict[int, Counter[str]] = {}
        self.totals: Counter[str] = Counter()
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
            if pending is not None:
                pending[label] += count
        self._expire(now)

    def _expire(self, now: float) -> None:
        oldest = int(now - self.history)
        for second in [s for s in self.buckets if s < oldest]:
            del self.buckets[second]

    def reset(self) -> None:
        self.buckets.clear()
        self.totals.clear()
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

    def share(self, service: str, now: float) -> dict[str, float]:
        counts = self.versions(self.window_counts(now), service)
        total = sum(counts.values())
        return {v: c / total for v, c in sorted(counts.items())} if total else {}

    def series(
        self, service: str, now: float, span: float | None = None
    ) -> list[tuple[int, dict[str, float]]]:
        """One point per second over the last ``span`` seconds (default: the history), each
        the share over the window ending there; seconds without traffic give ``{}``."""
        end = int(now)
        start = end - int(span if span is not None else self.history) + 1
        points: list[tuple[int, dict[str, float]]] = []
        for second in range(start, end + 1):
            counts = self.versions(self.window_counts(second), service)
            total = sum(counts.values())
            points.append(
                (second, {v: c / total for v, c in sorted(counts.items())} if total else {})
            )
        return points


def render_svg(
    series: list[tuple[int, dict[str, float]]],
    *,
    title: str,
    width: int = 720,
    height: int = 160,
) -> str:
    """A stacked-area chart of version shares (0..100 %) over time, as an SVG string.

    Each version is one polygon; versions stack in sorted order (v1 at the bottom), so a 70/30
    split shows a band boundary at 70 % and a rollback moves it back to 100 %."""
    pad_left, pad_right, pad_top, pad_bottom = 36, 90, 20, 18
    plot_w = width - pad_left - pad_right
    plot_h = height - pad_top - pad_bottom
    versions = sorted({v for _, shares in series for v in shares})
    n = len(series)

    def x(i: int) -> float:
        return pad_left + (plot_w * i / (n - 1) if n > 1 else 0.0)

    def y(fraction: float) -> float:
        return pad_top + plot_h * (1.0 - fraction)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_left}" y="14" font-size="13" font-family="sans-serif" '
        f'font-weight="bold">{escape(title)}</text>',
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
            f'<text x="{pad_left - 4}" y="{y(fraction) + 4:.1f}" font-size="10" '
            f'text-anchor="end" font-family="sans-serif">{int(fraction * 100)}%</text>'
        )
    if n > 1:
        # Time axis: seconds before now, so the room reads "the rollback was 20 s ago".
        ago = series[-1][0] - series[0][0]
        for label, anchor, at in ((f"-{ago} s", "start", 0), ("now", "end", n - 1)):
            parts.append(
                f'<text x="{x(at):.1f}" y="{height - 4}" font-size="10" text-anchor="{anchor}" '
                f'font-family="sans-serif" fill="#6b7280">{label}</text>'
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
                'fill-opacity="0.85" stroke="none"/>'
            )
            lower = upper
        latest = next((shares for _, shares in reversed(series) if shares), {})
        for row, version in enumerate(versions):
            label_y = pad_top + 12 + row * 16
            parts.append(
                f'<rect x="{pad_left + plot_w + 8}" y="{label_y - 9}" width="10" height="10" '
                f'fill="{colour(version)}"/>'
            )
            parts.append(
                f'<text x="{pad_left + plot_w + 22}" y="{label_y}" font-size="11" '
                f'font-family="sans-serif">{escape(version)} {latest.get(version, 0.0):.0%}</text>'
            )
    else:
        parts.append(
            f'<text x="{pad_left + plot_w / 2:.0f}" y="{pad_top + plot_h / 2:.0f}" '
            'font-size="12" text-anchor="middle" font-family="sans-serif" fill="#6b7280">'
            "no traffic yet: start a swarm</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
