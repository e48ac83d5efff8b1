"""The live version view in Locust's web UI.

Locust extension points used:

- ``events.init`` -> ``environment.web_ui.app`` gets a Flask blueprint: ``/versions`` (a page
  of stacked-area charts, one per service, redrawn every second), ``/versions/svg`` (the charts
  as inline SVG, rendered here in Python: no npm, no CDN, nothing to fetch from the internet),
  ``/versions/data`` (JSON: shares over the rolling window, totals).
- ``environment.web_ui.template_args["extended_tabs"]`` / ``["extended_tables"]`` plus an
  ``after_request`` hook on ``/stats/requests`` (``extended_stats``) -> a "Versions" tab
  inside Locust's own UI with the current split and the fault outcomes as a table.
- ``events.report_to_master`` / ``events.worker_report`` -> in a distributed run, workers ship
  their per-second buckets to the master, whose UI shows the whole swarm.
- ``events.reset_stats`` -> the UI's "Reset stats" also clears the version tally.

Primitives: ``TALLY`` (the process's ``RollingTally``), ``record(attribution, scope)``,
``record_labels(labels)``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, Response, make_response, request
from locust import events
from locust.runners import WorkerRunner

from loadtests.attribution import Attribution
from loadtests.window import DEFAULT_WINDOW, RollingTally, render_svg

TALLY = RollingTally()
REPORT_KEY = "meshlab_versions"
TAB_KEY = "versions"
CHART_SPAN = 120  # seconds on the charts' x axis
# The charts: (tally service, title). "test/" is the blue/green test host's scope.
CHARTS: tuple[tuple[str, str], ...] = (
    ("productpage", "productpage (bookinfo.local)"),
    ("reviews", "reviews"),
    ("details", "details"),
    ("test/productpage", "productpage (test.bookinfo.local)"),
)
OUTCOME_PREFIXES = (
    "reviews-unavailable",
    "details-unavailable",
    "slow",
    "flag:",
    "status:",
    "sticky-",
)


def record(result: Attribution, scope: str = "") -> None:
    labels = result.labels()
    if scope:
        labels = [f"{scope}/{label}" for label in labels]
    TALLY.add(labels, time.time())


def record_labels(labels: list[str]) -> None:
    TALLY.add(labels, time.time())


def table_rows(now: float) -> list[dict[str, str]]:
    """The "Versions" tab: one row per service version, then one per fault outcome."""
    window = TALLY.window_counts(now)
    rows: list[dict[str, str]] = []
    for service, title in CHARTS:
        versions = TALLY.versions(window, service)
        totals = TALLY.versions(TALLY.totals, service)
        in_window = sum(versions.values())
        for version in sorted(set(versions) | set(totals)):
            share = versions.get(version, 0) / in_window if in_window else 0.0
            rows.append(
                {
                    "name": f"{title}: {version}",
                    "share": f"{share:.0%}",
                    "window": str(versions.get(version, 0)),
                    "total": str(totals.get(version, 0)),
                }
            )
    for label in sorted(TALLY.totals):
        bare = label.split("/", 1)[-1]
        if bare.startswith(OUTCOME_PREFIXES):
            rows.append(
                {
                    "name": label,
                    "share": "",
                    "window": str(window.get(label, 0)),
                    "total": str(TALLY.totals[label]),
                }
            )
    return rows


def data(now: float) -> dict[str, Any]:
    return {
        "window_seconds": TALLY.window,
        "shares": {service: TALLY.share(service, now) for service, _ in CHARTS},
        "totals": dict(TALLY.totals),
    }


def charts_svg(now: float) -> str:
    return "".join(
        f"<div>{render_svg(TALLY.series(service, now, CHART_SPAN), title=title)}</div>"
        for service, title in CHARTS
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>meshlab: versions over time</title>
<style>body{font-family:sans-serif;margin:1.5em;background:#fff;color:#111}
h1{font-size:1.3em}p{color:#4b5563;font-size:.9em}</style></head>
<body><h1>Which version served what (share over the last %(window)d s)</h1>
<p>x-served-by of every Locust request; stacked shares per service, last %(span)d s.
Apply a scenario (make canary-70-30) and watch the split change; <a href="./">back to Locust</a>.</p>
<div id="charts">%(charts)s</div>
<script>
// Redraw once a second from /versions/svg (server-rendered SVG: no library needed).
setInterval(function () {
  fetch("versions/svg").then(function (r) { return r.text(); })
    .then(function (t) { document.getElementById("charts").innerHTML = t; })
    .catch(function () {});
}, 1000);
</script></body></html>
"""

blueprint = Blueprint("meshlab_versions", __name__)


@blueprint.route("/versions")
def versions_page() -> Response:
    now = time.time()
    body = PAGE % {"window": int(DEFAULT_WINDOW), "span": CHART_SPAN, "charts": charts_svg(now)}
    return make_response(body, 200, {"Content-Type": "text/html; charset=utf-8"})


@blueprint.route("/versions/svg")
def versions_svg() -> Response:
    return make_response(charts_svg(time.time()), 200, {"Content-Type": "text/html; charset=utf-8"})


@blueprint.route("/versions/data")
def versions_data() -> Response:
    return make_response(json.dumps(data(time.time())), 200, {"Content-Type": "application/json"})


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        TALLY.track_undrained = True
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.app.register_blueprint(blueprint)
    web_ui.template_args["extended_tabs"] = [{"title": "Versions", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB_KEY,
            "structure": [
                {"key": "name", "title": "service: version / outcome (charts: /versions)"},
                {"key": "share", "title": f"share, last {int(DEFAULT_WINDOW)} s"},
                {"key": "window", "title": f"requests, last {int(DEFAULT_WINDOW)} s"},
                {"key": "total", "title": "requests, total"},
            ],
        }
    ]

    @web_ui.app.after_request
    def _extend_stats(response: Response) -> Response:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        payload = response.get_json(silent=True)
        if isinstance(payload, dict):
            payload["extended_stats"] = [{"key": TAB_KEY, "data": table_rows(time.time())}]
            response.set_data(json.dumps(payload))
        return response


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
    data[REPORT_KEY] = TALLY.drain()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
    drained = data.get(REPORT_KEY)
    if drained:
        TALLY.merge(drained, time.time())


@events.reset_stats.add_listener
def _on_reset_stats(**_kw: Any) -> None:
    TALLY.reset()
