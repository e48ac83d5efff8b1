"""The console's HTML: the page shell and the fragments the page swaps in (all server-rendered).

Primitives: ``page()`` (the shell: header, four panels, the script tag), ``graph_svg(graph)``
(the versioned-app graph as SVG: nodes in columns by call depth, edges labelled with requests/s,
observed share and its 95 % interval beside the configured weight, error %, p95 and response
flags), ``traffic_svg(series, timeline)`` (requests/s per version per app with a marker per
config version), ``timeline_html``, ``traces_html`` (recent traces) and ``waterfall_html``
(one trace).

Projector rules: 20 px type and up, near-black on white, and every colour doubled by words or
symbols (``err 12 %``, ``✗ 503 FI``, ``EJECTED``), never colour alone.
"""

from __future__ import annotations

import calendar
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from mesh.telemetry.istio import RESPONSE_FLAGS
from mesh.telemetry.zipkin import Span

APP_ORDER = {"istio-ingressgateway": 0, "productpage": 1, "details": 2, "reviews": 2, "ratings": 3}
# Pixel sizes of the graph (the SVG scales to the page width; ~2000 px for Bookinfo, so a
# 1920-pixel projector shows it at full size).
NODE_W, LABEL_W, LABEL_LINE, NODE_GAP_Y, LINE_H = 290, 360, 22, 24, 26
COL_W = NODE_W + LABEL_W + 70
PALETTE = ("#1f4e9c", "#b35900", "#2e7d32", "#7b1fa2", "#00838f", "#6d4c41", "#c2185b")
OK, WARN, BAD = "#1b6b34", "#a15c00", "#b00020"
DASHED = ' stroke-dasharray="8 6"'


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def page(title: str = "meshlab console") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<link rel="stylesheet" href="/static/console.css">
</head><body>
<header><h1>{_e(title)}</h1>
<label>window <select id="duration">
<option>10s</option><option selected>30s</option><option>1m</option><option>5m</option>
</select></label>
<span id="status" role="status">loading…</span></header>
<main>
<section><h2>Traffic graph <small>(versioned apps; arrows = requests as the caller's proxy saw them)</small></h2>
<div id="graph" data-fragment="/fragment/graph" aria-live="polite">loading…</div></section>
<section><h2>Requests per second by version <small>(markers = config versions)</small></h2>
<div id="traffic" data-fragment="/fragment/traffic">loading…</div></section>
<section><h2>Config timeline</h2>
<div id="timeline" data-fragment="/fragment/timeline">loading…</div></section>
<section><h2>Traces <small>(newest first; click one for its waterfall)</small></h2>
<div id="traces" data-fragment="/fragment/traces">loading…</div>
<div id="waterfall"></div></section>
</main>
<script src="/static/console.js"></script>
</body></html>
"""


def banner(message: str) -> str:
    return f'<p class="banner" role="alert">⚠ {_e(message)}</p>'


# ---------------------------------------------------------------- the graph


def _columns(graph: Mapping[str, Any]) -> dict[str, int]:
    """Node → column: call depth from the nodes nobody calls, else the app's usual place."""
    incoming: dict[str, set[str]] = defaultdict(set)
    outgoing: dict[str, set[str]] = defaultdict(set)
    for edge in graph["edges"]:
        if edge["source"] != edge["target"]:
            outgoing[edge["source"]].add(edge["target"])
            incoming[edge["target"]].add(edge["source"])
    depth: dict[str, int] = {}
    frontier = [n["id"] for n in graph["nodes"] if not incoming[n["id"]] and outgoing[n["id"]]]
    for nid in frontier:
        depth[nid] = 0
    while frontier:
        nxt = []
        for nid in frontier:
            for target in outgoing[nid]:
                if depth.get(target, -1) < depth[nid] + 1 and depth[nid] < 10:
                    depth[target] = depth[nid] + 1
                    nxt.append(target)
        frontier = nxt
    by_app: dict[str, int] = {}
    for node in graph["nodes"]:
        if node["id"] in depth:
            by_app.setdefault(node["app"], depth[node["id"]])
    last = max([*depth.values(), *APP_ORDER.values()], default=0)
    for node in graph["nodes"]:
        if node["id"] not in depth:
            depth[node["id"]] = by_app.get(node["app"], APP_ORDER.get(node["app"], last + 1))
    return depth


def _edge_colour(edge: Mapping[str, Any]) -> str:
    rate = edge.get("error_rate") or 0.0
    return BAD if rate >= 0.05 else WARN if rate > 0 else OK


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def edge_lines(edge: Mapping[str, Any]) -> list[str]:
    """The words on an edge, one string per line."""
    lines = [f"{edge['rps']:.1f} req/s · {_pct(edge.get('share'))} of {edge['service']}"]
    ci = edge.get("share_ci95")
    configured = edge.get("configured_share")
    second = []
    if ci:
        second.append(f"95 % CI {ci[0] * 100:.0f}–{ci[1] * 100:.0f} %")
    if configured is not None:
        second.append(f"configured {configured * 100:.0f} %")
    if second:
        lines.append(" · ".join(second))
    third = [f"err {(edge.get('error_rate') or 0) * 100:.0f} %"]
    if edge.get("p95_ms") is not None:
        third.append(f"p95 {edge['p95_ms']:.0f} ms")
    if edge.get("mtls"):
        third.append("🔒 mTLS")
    lines.append(" · ".join(third))
    flags = edge.get("flags") or {}
    if flags:
        lines.append("flags " + " ".join(f"{f}×{n}" for f, n in flags.items()))
    return lines


def principal_lines(edge: Mapping[str, Any]) -> list[str]:
    """Who spoke to whom on an mTLS edge: the principals its certificates carried."""
    principals = edge.get("principals") or {}
    return [
        f"{side}: {', '.join(principals[side])}"
        for side in ("source", "destination")
        if principals.get(side)
    ]


def _principals_title(edge: Mapping[str, Any]) -> str:
    """The edge's principals as its tooltip (hovering the label shows them)."""
    lines = principal_lines(edge)
    return f"<title>{_e(chr(10).join(['mTLS', *lines]))}</title>" if lines else ""


def graph_svg(graph: Mapping[str, Any], prometheus_error: str | None = None) -> str:
    head = banner(prometheus_error + " — showing the config only") if prometheus_error else ""
    nodes = graph["nodes"]
    if not nodes:
        return head + '<p class="empty">No pods registered yet: is the lab running?</p>'
    columns = _columns(graph)
    # Edge labels stand just left of their target, stacked when several edges arrive there;
    # a node's slot is as tall as its box or its stack of labels.
    incoming: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    known = {n["id"] for n in nodes}
    for edge in graph["edges"]:
        if edge["source"] in known and edge["target"] in known:
            incoming[edge["target"]].append(edge)
    label_h = {id(e): len(edge_lines(e)) * LABEL_LINE + 10 for e in graph["edges"]}
    placed: dict[str, tuple[float, float, float]] = {}  # id -> x, y, box height
    heights: dict[int, float] = defaultdict(float)
    ordered = sorted(nodes, key=lambda n: (columns[n["id"]], n["app"], n.get("version") or ""))
    for node in ordered:
        col = columns[node["id"]]
        lines = 2 + len(node["badges"]) + 2 * len(node["ejected"])
        box = 20 + lines * LINE_H
        stack = sum(label_h[id(e)] + 6 for e in incoming[node["id"]])
        slot = max(box, stack)
        y = 20 + heights[col] + (slot - box) / 2
        placed[node["id"]] = (20 + col * COL_W, y, box)
        heights[col] += slot + NODE_GAP_Y
    width = 40 + max(columns.values()) * COL_W + NODE_W
    height = 20 + max(heights.values())
    parts = [
        f'<svg id="graph-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="100%" style="max-width:{width:.0f}px" role="img" aria-label="traffic graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" '
        'markerWidth="16" markerHeight="16" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#222"/></marker></defs>',
    ]
    labels: list[str] = []
    for target, edges in incoming.items():
        tx, ty, th = placed[target]
        stack = sum(label_h[id(e)] + 6 for e in edges) - 6
        label_y = ty + th / 2 - stack / 2
        for edge in sorted(edges, key=lambda e: placed[e["source"]][1]):
            sx, sy, sh = placed[edge["source"]]
            box_h = label_h[id(edge)]
            x1, y1 = sx + NODE_W, sy + sh / 2
            x2, y2 = tx, label_y + box_h / 2
            colour = _edge_colour(edge)
            width_px = 2 + min(8, edge["rps"] / 5)
            mid = (x1 + x2) / 2
            parts.append(
                f'<path class="edge-line" data-source="{_e(edge["source"])}" data-target="{_e(edge["target"])}" '
                f'd="M {x1:.0f} {y1:.0f} C {mid:.0f} {y1:.0f}, {mid:.0f} {y2:.0f}, {x2 - 2:.0f} {y2:.0f}" '
                f'fill="none" stroke="{colour}" stroke-width="{width_px:.1f}" marker-end="url(#arrow)"'
                f"{DASHED if not edge['requests'] else ''}/>"
            )
            # Labels go on top of every line (drawn after them).
            lx = tx - LABEL_W - 24
            label = [
                f'<g class="edge" data-source="{_e(edge["source"])}" data-target="{_e(edge["target"])}">'
                f"{_principals_title(edge)}"
                f'<rect x="{lx:.0f}" y="{label_y:.0f}" width="{LABEL_W}" height="{box_h}" '
                f'fill="#ffffff" stroke="{colour}" stroke-width="2"/>'
                f'<text class="edge-label" x="{lx + 8:.0f}" y="{label_y + LABEL_LINE:.0f}" fill="#111">'
            ]
            for i, line in enumerate(edge_lines(edge)):
                label.append(
                    f'<tspan x="{lx + 8:.0f}" dy="{0 if i == 0 else LABEL_LINE}">{_e(line)}</tspan>'
                )
            label.append("</text></g>")
            labels.append("".join(label))
            label_y += box_h + 6
    parts.extend(labels)
    for node in ordered:
        x, y, h = placed[node["id"]]
        ejected = bool(node["ejected"])
        stroke = BAD if ejected else "#222"
        parts.append(
            f'<g class="node" data-node="{_e(node["id"])}"><rect x="{x:.0f}" y="{y:.0f}" '
            f'width="{NODE_W}" height="{h:.0f}" rx="10" fill="#f4f6fa" stroke="{stroke}" stroke-width="3"/>'
        )
        title = node["app"] + (f" {node['version']}" if node.get("version") else "")
        kind = {
            "gateway": "gateway", "service": "service (no pod answered)",
            "unknown": "outside the mesh",
        }.get(node["kind"], "")  # fmt: skip
        parts.append(
            f'<text x="{x + 14:.0f}" y="{y + 32:.0f}" class="node-title">{_e(title)}</text>'
            f'<text x="{x + 14:.0f}" y="{y + 32 + LINE_H:.0f}" class="node-sub">'
            f"{_e(kind or ', '.join(node['pods']) or node['id'])}</text>"
        )
        line_y = y + 32 + 2 * LINE_H
        for badge in node["badges"]:
            css = "badge-bad" if badge["kind"] == "ejected" else "badge"
            parts.append(
                f'<text x="{x + 14:.0f}" y="{line_y:.0f}" class="{css}" data-badge="{_e(badge["kind"])}">'
                f"◆ {_e(badge['label'])}</text>"
            )
            line_y += LINE_H
        for ejection in node["ejected"]:
            parts.append(
                f'<text x="{x + 14:.0f}" y="{line_y:.0f}" class="badge-bad">'
                f"✗ EJECTED {_e(ejection['pod'])}</text>"
                f'<text x="{x + 34:.0f}" y="{line_y + LINE_H:.0f}" class="badge-bad">'
                f"by {_e(ejection['by'])}, {ejection['seconds_left']:.0f} s left</text>"
            )
            line_y += 2 * LINE_H
        parts.append("</g>")
    parts.append("</svg>")
    legend = " · ".join(
        f"<b>{f}</b> {_e(words)}"
        for f, words in RESPONSE_FLAGS.items()
        if any(f in (e.get("flags") or {}) for e in graph["edges"])
    )
    version = graph.get("config_version")
    foot = (
        f'<p class="caption">config version <b id="config-version">{_e(version if version is not None else "–")}</b>'
        f" · window {graph.get('window_seconds', '?')} s · solid line: traffic seen; dashed: configured, no traffic yet"
        f" · green/orange/red line = no / some / ≥5 % errors (the label says how many)"
        + (f"<br>flags: {legend}" if legend else "")
        + "</p>"
    )
    return head + "".join(parts) + foot


# ---------------------------------------------------------------- traffic and timeline


def traffic_svg(
    series: Sequence[tuple[Mapping[str, str], Sequence[tuple[float, float]]]],
    timeline: Sequence[Mapping[str, Any]],
    start: float,
    end: float,
    prometheus_error: str | None = None,
) -> str:
    if prometheus_error:
        return banner(prometheus_error)
    per_app: dict[str, list[tuple[str, Sequence[tuple[float, float]]]]] = defaultdict(list)
    for labels, points in series:
        app = labels.get("destination_app") or labels.get("destination_service_name") or "unknown"
        if app == "unknown":
            app = labels.get("destination_service_name", "unknown")
        version = labels.get("destination_version") or "unknown"
        if any(v > 0 for _, v in points):
            per_app[app].append((version, points))
    if not per_app:
        return '<p class="empty">No requests in the last minutes: start Locust or curl the gateway.</p>'
    w, h, pad = 1100, 190, 60
    # From the first request on (at least a minute), so a young lab's lines are not squeezed.
    first = min(
        (t for lines in per_app.values() for _, pts in lines for t, v in pts if v > 0),
        default=start,
    )
    start = max(start, min(first - 5, end - 60))
    span = max(end - start, 1.0)
    markers = [e for e in timeline if start <= _unix(e.get("time")) <= end]
    out = []
    for app in sorted(per_app, key=lambda a: (APP_ORDER.get(a, 9), a)):
        lines = sorted(per_app[app])
        peak = max((v for _, pts in lines for _, v in pts if v == v), default=1.0) or 1.0
        legend = " ".join(
            f'<span style="color:{PALETTE[i % len(PALETTE)]}">■ {_e(version)} '
            f"{next((v for _, v in reversed(points) if v == v), 0.0):.1f}/s</span>"
            for i, (version, points) in enumerate(lines)
        )
        parts = [
            f'<p class="chart-legend"><b>{_e(app)}</b> {legend}</p>',
            f'<svg class="chart" data-app="{_e(app)}" viewBox="0 0 {w} {h + 40}" width="100%" '
            f'role="img" aria-label="{_e(app)} requests per second by version">',
            f'<line x1="{pad}" y1="{h}" x2="{w - 10}" y2="{h}" stroke="#333"/>',
            f'<text x="4" y="{h}" class="axis">0</text><text x="4" y="48" class="axis">{peak:.1f}/s</text>',
        ]
        for marker in markers:
            x = pad + (_unix(marker["time"]) - start) / span * (w - pad - 10)
            label = f"v{marker['version']} {str(marker['time'])[11:19]}"
            parts.append(
                f'<line x1="{x:.0f}" y1="30" x2="{x:.0f}" y2="{h}" stroke="#555" stroke-dasharray="4 4"/>'
                f'<text x="{x + 4:.0f}" y="{h + 22}" class="marker">{_e(label)}</text>'
            )
        for i, (_version, points) in enumerate(lines):
            colour = PALETTE[i % len(PALETTE)]
            coords = " ".join(
                f"{pad + (t - start) / span * (w - pad - 10):.1f},{h - (v / peak) * (h - 40):.1f}"
                for t, v in points
                if v == v and t >= start
            )
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="3"/>'
            )
        parts.append("</svg>")
        out.append("".join(parts))
    return "".join(out)


def _unix(stamp: Any) -> float:
    try:
        text = str(stamp).rstrip("Z")
        whole, _, frac = text.partition(".")
        base = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return base + (float(f"0.{frac}") if frac else 0.0)
    except (ValueError, OverflowError):
        return 0.0


def timeline_html(timeline: Sequence[Mapping[str, Any]], limit: int = 12) -> str:
    if not timeline:
        return '<p class="empty">No published config yet.</p>'
    rows = []
    for entry in reversed(timeline[-limit:]):
        changed = entry.get("changed") or []
        endpoints = entry.get("endpoints") or {}
        moved = [f"+{p}" for p in endpoints.get("added", [])] + [
            f"−{p}" for p in endpoints.get("removed", [])
        ]
        what = ", ".join(changed) or ("endpoints " + " ".join(moved) if moved else "–")
        scenario = entry.get("scenario")
        rows.append(
            f'<tr data-version="{_e(entry["version"])}"><td>v{_e(entry["version"])}</td>'
            f"<td>{_e(str(entry.get('time', ''))[11:19])}</td>"
            f"<td>{_e(scenario) if scenario else ''}</td><td>{_e(what)}</td></tr>"
        )
    return (
        '<table class="timeline"><thead><tr><th>version</th><th>time (UTC)</th><th>scenario</th>'
        "<th>what changed</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


# ---------------------------------------------------------------- traces


def _status(span: Span) -> tuple[str, bool]:
    code = span.tags.get("http.status_code", "")
    flags = span.tags.get("response_flags", "-")
    failed = span.tags.get("error") == "true" or code.startswith("5") or code == "0"
    text = f"{'✗' if failed else '✓'} {code}" + (f" {flags}" if flags not in ("", "-") else "")
    return text, failed


def traces_html(traces: Sequence[Sequence[Span]], limit: int = 15) -> str:
    if not traces:
        return '<p class="empty">No traces yet: every request through the gateway makes one.</p>'
    rows = []
    for spans in traces[:limit]:
        first = min((s.timestamp or 0) for s in spans)
        last = max((s.end or 0) for s in spans)
        root = next((s for s in spans if s.parent_id is None), spans[0])
        failed = [s for s in spans if _status(s)[1]]
        services = sorted({s.service_name or "?" for s in spans})
        stamp = time.strftime("%H:%M:%S", time.gmtime(first / 1e6))
        rows.append(
            f'<tr class="trace{" failed" if failed else ""}" data-trace-id="{_e(root.trace_id)}" tabindex="0">'
            f"<td>{stamp}</td><td>{_e(root.tags.get('http.url', root.name or ''))}</td>"
            f"<td>{(last - first) / 1000:.0f} ms</td><td>{len(spans)}</td>"
            f"<td>{'✗ ' + str(len(failed)) + ' failed' if failed else '✓ ok'}</td>"
            f"<td>{_e(', '.join(services))}</td></tr>"
        )
    return (
        '<table class="traces"><thead><tr><th>time</th><th>request</th><th>duration</th>'
        "<th>spans</th><th>result</th><th>services</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _ordered(spans: Sequence[Span]) -> list[tuple[int, Span]]:
    """Depth-first: a CLIENT span, then the SERVER span sharing its id, then their children."""
    children: dict[str | None, list[Span]] = defaultdict(list)
    ids = {s.id for s in spans}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        children[parent].append(span)
    out: list[tuple[int, Span]] = []
    visited: set[int] = set()

    def walk(parent: str | None, depth: int) -> None:
        kids = sorted(
            children.get(parent, []), key=lambda s: (s.timestamp or 0, s.kind != "CLIENT")
        )
        by_id: dict[str, list[Span]] = defaultdict(list)
        for kid in kids:
            by_id[kid.id].append(kid)
        for kid_id, group in by_id.items():
            for offset, span in enumerate(group):
                if id(span) not in visited:
                    visited.add(id(span))
                    out.append((depth + offset, span))
            walk(kid_id, depth + len(group))

    walk(None, 0)
    for span in spans:  # anything unreachable (a cycle, a lost parent) still shows
        if id(span) not in visited:
            out.append((0, span))
    return out


def waterfall_html(spans: Sequence[Span] | None, trace_id: str) -> str:
    if not spans:
        return f'<p class="empty">Trace {_e(trace_id)} is not (or no longer) in the collector.</p>'
    start = min(s.timestamp or 0 for s in spans)
    end = max(s.end or 0 for s in spans)
    total = max(end - start, 1)
    rows = []
    for depth, span in _ordered(spans):
        left = ((span.timestamp or start) - start) / total * 100
        width = max((span.duration or 0) / total * 100, 0.4)
        text, failed = _status(span)
        who = f"{span.service_name or '?'} · {span.kind or ''}"
        upstream = span.tags.get("upstream_address") or span.tags.get("upstream_cluster") or ""
        rows.append(
            f'<div class="span-row{" failed" if failed else ""}" data-span-id="{_e(span.id)}">'
            f'<div class="span-name" style="padding-left:{depth * 18}px">{_e(who)}<br>'
            f"<small>{_e(span.name or '')}{' → ' + _e(upstream) if upstream else ''}</small></div>"
            f'<div class="span-track"><div class="span-bar{" bad" if failed else ""}" '
            f'style="left:{left:.2f}%;width:{width:.2f}%"></div></div>'
            f'<div class="span-meta">{(span.duration or 0) / 1000:.1f} ms · {_e(text)}</div></div>'
        )
    return (
        f'<div class="waterfall" data-trace="{_e(trace_id)}"><h3>Trace {_e(trace_id)} · '
        f"{total / 1000:.1f} ms · {len(spans)} spans</h3>" + "".join(rows) + "</div>"
    )
