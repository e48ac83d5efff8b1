"""What Locust's Versions tab shows, from a ``RollingTally``: pure, the clock passed in.

Primitives:

- ``labels_for(result, scope, visitor)`` -- the tally keys of one response: its versions under
  the host's scope (``productpage-v2``, ``test/productpage-v1``), and its outcome under the
  kind of visitor (``tester:requests``, ``tester:reviews-unavailable``, ``tester:flag:FI``),
  so an outcome can be shown as a share of *that visitor's* requests.
- ``table_rows(tally, now)`` -- the tab's rows: the config version and the charts' address;
  one row per service version with traffic in the window (rows without traffic are hidden),
  each with a text bar for the last second's share (per-second: a switch is a step), the
  share over the window and the count since the config changed; then, apart, one row per
  visitor outcome (``tester: reviews unavailable``, ``sticky: left v2 despite its cookie``).

Locust renders the table's cells as text, hence text bars; ``live.py``'s page script colours
them (a version row in its version's colour, an outcome row in red).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from loadtests.attribution import Attribution
from loadtests.window import DEFAULT_WINDOW, RollingTally, bar

# The charts and version rows: (tally service, title). "test/" is the blue/green test host.
CHARTS: tuple[tuple[str, str], ...] = (
    ("productpage", "productpage (bookinfo.local)"),
    ("reviews", "reviews"),
    ("details", "details"),
    ("test/productpage", "productpage (test.bookinfo.local)"),
)
VISITORS = ("anonymous", "tester", "sticky", "bluegreen")  # the users' tags, in table order
REQUESTS = "requests"
STICKY = ("kept-v2", "left-v2")  # a cookie holder's page: stayed on v2, or left it
OUTCOME_NAMES = {
    "reviews-unavailable": "reviews unavailable",
    "details-unavailable": "details unavailable",
    "local-reply": "answered by the gateway itself",
    "slow": "slow (2 s or more)",
    "left-v2": "left v2 despite its cookie",
    "kept-v2": "stayed on v2 (its cookie)",
}
Row = dict[str, str]


def labels_for(result: Attribution, scope: str = "", visitor: str = "anonymous") -> list[str]:
    versions = {f"{service}-{v}" for service, v in result.versions.items() if v}
    outcomes = [f"{visitor}:{label}" for label in result.labels() if label not in versions]
    scoped = sorted(f"{scope}/{label}" if scope else label for label in versions)
    return [*scoped, f"{visitor}:{REQUESTS}", *outcomes]


def outcome_name(label: str) -> str:
    if label.startswith("flag:"):
        return f"response flag {label[5:]}"
    if label.startswith("status:"):
        return "no response" if label[7:] == "0" else f"HTTP {label[7:]}"
    return OUTCOME_NAMES.get(label, label.replace("-", " "))


def _row(name: str, now: str = "", window: str = "", since: str = "") -> Row:
    return {"name": name, "now": now, "window": window, "since": since}


def header_row(tally: RollingTally, now: float) -> Row:
    if not tally.marks:
        return _row("config version unknown (no $MESH_DIR here)", "charts: /versions")
    second, version = tally.marks[-1]
    since = time.strftime("%H:%M:%S", time.localtime(second))
    return _row(
        f"config v{version}, live since {since} ({int(now) - second} s ago)",
        "charts: /versions",
    )


def table_rows(tally: RollingTally, now: float) -> list[Row]:
    window = tally.window_counts(now)
    second: Mapping[str, int] = tally.buckets.get(int(now) - 1, {})
    rows = [header_row(tally, now), _row("VERSIONS: share of each service's responses")]
    for service, title in CHARTS:
        in_window = tally.versions(window, service)
        if not in_window:
            continue  # no traffic in the window: no row (the test host under a canary...)
        total = sum(in_window.values())
        this_second = tally.shares(second, service)
        since = tally.versions(tally.since_mark, service)
        for version in sorted(in_window):
            rows.append(
                _row(
                    f"{title} {version}",
                    bar(this_second.get(version, 0.0)) if this_second else "-",
                    f"{in_window[version] / total:.0%} of {total}",
                    str(since.get(version, 0)),
                )
            )
    rows.append(_row(f"OUTCOMES: share of that visitor's requests (last {DEFAULT_WINDOW:.0f} s)"))
    for visitor in VISITORS:
        prefix = f"{visitor}:"
        labels = sorted(
            key[len(prefix) :]
            for key, count in window.items()
            if key.startswith(prefix) and count and key != prefix + REQUESTS
        )
        for label in labels:
            # A share of the visitor's requests; the sticky pair of its pinned pages only.
            parts = STICKY if label in STICKY else (REQUESTS,)
            base = sum(window.get(prefix + p, 0) for p in parts)
            now_base = sum(second.get(prefix + p, 0) for p in parts)
            count, now_count = window[prefix + label], second.get(prefix + label, 0)
            rows.append(
                _row(
                    f"{visitor}: {outcome_name(label)}",
                    bar(now_count / now_base) if now_base else "-",
                    f"{count / base:.0%} of {base}" if base else str(count),
                    str(tally.since_mark.get(prefix + label, 0)),
                )
            )
    return rows
