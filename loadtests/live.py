"""The live version view in Locust's web UI, made for a room to read.

Locust extension points used:

- ``events.init`` -> ``environment.web_ui.app`` gets a Flask blueprint: ``/versions`` (one
  full-width stacked chart per service, one share per second, config versions marked,
  redrawn every second), ``/versions/svg`` (the charts as inline SVG, rendered here in
  Python: no npm, no CDN, nothing to fetch from the internet), ``/versions/data`` (JSON).
- ``environment.web_ui.template_args["extended_tabs"]`` / ``["extended_tables"]`` plus an
  ``after_request`` hook on ``/stats/requests`` (``extended_stats``) -> a "Versions" tab in
  Locust's own UI: the config version and a link to the charts, then one row per service
  version *with traffic in the window* (a text bar for the last second's share, coloured by
  a small script this module adds to Locust's page in the lab's colours: v1 blue, v2 amber,
  v3 red; outcomes red), then the outcome rows apart (per
  kind of visitor, as a share of that visitor's requests: ``tester: reviews unavailable``
  is 25 % under ``make abort``, plain to see although testers are a few users in twenty).
  Another ``after_request`` hook adds a "Version charts" link to Locust's own page.
- A greenlet reads the live config once a second (``liveconfig.py``: the gateway's applied
  version from ``$MESH_DIR``): a change is marked on the charts and restarts the counts
  "since config" (so ``sticky-left`` counts per config); the blue/green visitor only visits
  while a route names its host (``BLUE_GREEN_ACTIVE``).
- ``events.report_to_master`` / ``events.worker_report`` -> in a distributed run, workers ship
  their per-second buckets to the master, whose UI shows the whole swarm.
- ``events.reset_stats`` -> the UI's "Reset stats" also clears the version tally.
- Ctrl-C takes Locust's SIGTERM path (a clean stop with the stats printed), not a
  KeyboardInterrupt in the middle of a web request.

Primitives: ``TALLY`` (the process's ``RollingTally``), ``CONFIG`` (the last ``LiveConfig``
read), ``record(attribution, scope, visitor)``, ``record_labels(labels, visitor)``,
``table_rows(now)``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import gevent
from flask import Blueprint, Response, make_response, request
from locust import events
from locust.runners import WorkerRunner

from loadtests.attribution import Attribution
from loadtests.liveconfig import UNKNOWN, LiveConfig, read_live_config
from loadtests.strategies import TEST_HOST
from loadtests.view import CHARTS, labels_for
from loadtests.view import table_rows as view_rows
from loadtests.window import (
    DEFAULT_WINDOW,
    EMPTY_BLOCK,
    FULL_BLOCK,
    VERSION_COLOURS,
    RollingTally,
    render_svg,
)

TALLY = RollingTally()
CONFIG: list[LiveConfig] = [UNKNOWN]  # the last read; a list so the greenlet can replace it
REPORT_KEY = "meshlab_versions"
TAB_KEY = "versions"
CHART_SPAN = 120  # seconds on the charts' x axis
CONFIG_POLL_SECONDS = 1.0


def record(result: Attribution, scope: str = "", visitor: str = "anonymous") -> None:
    """One response: its versions under the host's ``scope``, its outcome under ``visitor``."""
    TALLY.add(labels_for(result, scope, visitor), time.time())


def record_labels(labels: list[str], visitor: str) -> None:
    TALLY.add([f"{visitor}:{label}" for label in labels], time.time())


def blue_green_active() -> bool:
    """Should the test-host visitor visit? Yes while a route names its host, and whenever the
    config cannot be read (no ``$MESH_DIR``): then nothing is known, so it behaves as before."""
    return CONFIG[0].test_host_routed is not False


def table_rows(now: float) -> list[dict[str, str]]:
    """The view's rows for Locust's table, which sorts by the ``name`` key: the label goes to
    ``what``, ``name`` is the row's position so the view's order stands."""
    rows = []
    for position, row in enumerate(view_rows(TALLY, now)):
        rows.append({**row, "what": row["name"], "name": f"{position:04d}"})
    return rows


def data(now: float) -> dict[str, Any]:
    return {
        "window_seconds": TALLY.window,
        "config_version": TALLY.config_version,
        "marks": [{"time": second, "version": version} for second, version in TALLY.marks],
        "shares": {service: TALLY.share(service, now) for service, _ in CHARTS},
        "second_shares": {service: TALLY.second_share(service, now) for service, _ in CHARTS},
        "totals": dict(TALLY.totals),
    }


def charts_svg(now: float) -> str:
    charts = []
    for service, title in CHARTS:
        series = TALLY.series(service, now, CHART_SPAN)
        if service.startswith("test/") and not any(shares for _, shares in series):
            continue  # the test host has had no traffic in the span: no empty chart
        charts.append(
            f"<div class='chart'>{render_svg(series, title=title, marks=TALLY.marks)}</div>"
        )
    return "".join(charts)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>meshlab: versions over time</title>
<style>body{font-family:sans-serif;margin:1em 1.5em;background:#fff;color:#111;font-size:1.1rem}
h1{font-size:1.6em;margin:.2em 0}p{color:#374151;margin:.3em 0 .8em}
.chart{width:100%%;margin-bottom:.6em}
.key span{display:inline-block;padding:0 .5em;margin-right:.5em;font-weight:bold}</style></head>
<body><h1>Which version served what: one share per second, last %(span)d s</h1>
<p class="key"><span style="background:#2563eb;color:#fff">v1 blue</span>
<span style="background:#f59e0b">v2 amber</span>
<span style="background:#dc2626;color:#fff">v3 red</span>
dashed line: a config version went live. <a href="./">Back to Locust</a>.</p>
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

# Added to Locust's own page: the charts one click away, and the Versions tab's bars coloured
# (a version row in its version's colour, an outcome row red). The script only sets a cell's
# inline style, never its children, which Locust's React UI owns.
PAGE_ADDITIONS = """<a id="meshlab-versions-link" href="versions" target="_blank" style="position:fixed;
right:1rem;bottom:1rem;z-index:9999;padding:.6rem 1rem;border-radius:.5rem;background:#2563eb;
color:#fff;font:bold 1.1rem sans-serif;text-decoration:none">Version charts &#8599;</a>
<script>(function () {
  var colours = __COLOURS__, outcome = "#b91c1c";
  function paint() {
    document.querySelectorAll("tr").forEach(function (tr) {
      var cells = tr.querySelectorAll("td");
      if (cells.length < 2 || !/^[__BLOCKS__]/.test(cells[1].textContent)) return;
      var version = / (v\\d+)$/.exec(cells[0].textContent);
      var colour = version ? (colours[version[1]] || "#6b7280") : outcome;
      cells[1].style.color = colour;
      cells[1].style.fontWeight = "bold";
      cells[1].style.whiteSpace = "nowrap";
    });
  }
  new MutationObserver(paint).observe(document.body, {childList: true, subtree: true,
                                                      characterData: true});
})();</script>""".replace("__COLOURS__", json.dumps(VERSION_COLOURS)).replace(
    "__BLOCKS__", FULL_BLOCK + EMPTY_BLOCK
)

blueprint = Blueprint("meshlab_versions", __name__)


@blueprint.route("/versions")
def versions_page() -> Response:
    body = PAGE % {"span": CHART_SPAN, "charts": charts_svg(time.time())}
    return make_response(body, 200, {"Content-Type": "text/html; charset=utf-8"})


@blueprint.route("/versions/svg")
def versions_svg() -> Response:
    return make_response(charts_svg(time.time()), 200, {"Content-Type": "text/html; charset=utf-8"})


@blueprint.route("/versions/data")
def versions_data() -> Response:
    return make_response(json.dumps(data(time.time())), 200, {"Content-Type": "application/json"})


def watch_config(mesh_dir: str, mark: bool) -> None:
    """Read the live config once a second, forever (a greenlet); ``mark``: the process whose
    UI shows the view (not a worker) marks each new version on the tally."""
    while True:
        try:
            CONFIG[0] = read_live_config(mesh_dir, TEST_HOST, CONFIG[0])
        except Exception:  # noqa: BLE001 - a half-written file: keep the last, read again
            pass
        version = CONFIG[0].version
        if mark and version is not None:
            TALLY.mark(version, time.time())
        gevent.sleep(CONFIG_POLL_SECONDS)


def _default_users(environment: Any) -> None:
    """The web UI's form starts at a crowd the lab is sized for, not Locust's one user."""
    from loadtests.plan import ShapeConfig

    options = getattr(environment, "parsed_options", None)
    if options is None or options.num_users is not None:
        return
    config = ShapeConfig.from_env(os.environ)
    options.num_users = config.users
    if options.spawn_rate == 1:  # Locust's default: unset
        options.spawn_rate = config.spawn_rate


def _ctrl_c() -> None:
    """Ctrl-C as a clean stop: Locust's own SIGTERM path (stop the users, print the stats,
    exit), run from the event loop, instead of a KeyboardInterrupt raised in whichever
    greenlet happened to run (a web request being written prints a traceback)."""
    os.kill(os.getpid(), signal.SIGTERM)


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    gevent.signal_handler(signal.SIGINT, _ctrl_c)
    worker = isinstance(environment.runner, WorkerRunner)
    if worker:
        TALLY.track_undrained = True
    mesh_dir = os.environ.get("MESH_DIR", "").strip()
    if mesh_dir:
        gevent.spawn(watch_config, mesh_dir, not worker)
    _default_users(environment)
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.app.register_blueprint(blueprint)
    web_ui.template_args["extended_tabs"] = [{"title": "Versions", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB_KEY,
            "structure": [
                {"key": "what", "title": "service version / visitor: outcome"},
                {"key": "now", "title": "last second"},
                {"key": "window", "title": f"last {int(DEFAULT_WINDOW)} s"},
                {"key": "since", "title": "since the config changed"},
            ],
        }
    ]

    @web_ui.app.after_request
    def _extend(response: Response) -> Response:
        if request.path == "/stats/requests" and response.is_json:
            payload = response.get_json(silent=True)
            if isinstance(payload, dict):
                payload["extended_stats"] = [{"key": TAB_KEY, "data": table_rows(time.time())}]
                response.set_data(json.dumps(payload))
        elif (
            request.path == "/"
            and response.mimetype == "text/html"
            and not response.direct_passthrough
        ):
            page = response.get_data(as_text=True)
            if "</body>" in page and "meshlab-versions-link" not in page:
                response.set_data(page.replace("</body>", PAGE_ADDITIONS + "</body>", 1))
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
