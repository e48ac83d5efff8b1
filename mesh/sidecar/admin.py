"""The proxy's admin port (Envoy's admin API, the parts the lab uses): ``/ready``,
``/stats/prometheus`` (Istio's standard metrics and the lab's own), ``/config_dump``,
``/clusters`` (Envoy's text form, ``health_flags::/failed_outlier_check`` on an ejected host;
``?format=json`` for tools), ``/healthz``, ``/certs`` (the proxy's certificate and what it
enforces), ``/tap`` (the first bytes of new inbound connections).

Primitives: ``handle(sidecar, ex)``, ``clusters_text(described clusters)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mesh.sidecar import tap

if TYPE_CHECKING:
    from mesh.sidecar.http1.exchange import Exchange


def handle(sidecar: Any, ex: Exchange) -> None:
    """Answer one admin request for ``sidecar`` (``mesh.sidecar.server.Sidecar``)."""
    path, _, query = ex.url.decode("latin-1").partition("?")
    now = time.monotonic()
    rt = sidecar.runtime
    if path == "/ready":
        if sidecar.ready:
            ex.reply(200, b"LIVE\n")
        else:
            ex.reply(503, b"NOT READY\n" if sidecar.snapshot else b"PRE_INITIALIZING\n")
    elif path in ("/stats/prometheus", "/stats", "/metrics"):
        extra = []
        extra.append("# TYPE mesh_outlier_ejections_total counter")
        for name, state in sorted(rt.states.items()):
            extra.append(f'mesh_outlier_ejections_total{{cluster="{name}"}} {state.ejections}')
        extra.append("# TYPE mesh_outlier_ejected_hosts gauge")
        for name, state in sorted(rt.states.items()):
            ejected = len(state.cluster.endpoints) - len(state.healthy)
            extra.append(f'mesh_outlier_ejected_hosts{{cluster="{name}"}} {ejected}')
        extra.append("# TYPE mesh_upstream_rq_pending_overflow_total counter")
        for name, load in sorted(rt.loads.items()):
            extra.append(
                f'mesh_upstream_rq_pending_overflow_total{{cluster="{name}"}} {load.overflows}'
            )
        # Envoy's listener stats: downstream_cx_active, and downstream_cx_overflow for
        # connections refused over the listener's cap.
        extra.append("# TYPE mesh_downstream_cx_active gauge")
        for listener in sidecar.listeners:
            extra.append(
                f'mesh_downstream_cx_active{{listener="{listener.name}"}} {len(listener.conns)}'
            )
        extra.append("# TYPE mesh_downstream_cx_overflow_total counter")
        for listener in sidecar.listeners:
            extra.append(
                f'mesh_downstream_cx_overflow_total{{listener="{listener.name}"}} '
                f"{listener.overflows}"
            )
        tracer = sidecar.tracer
        if tracer is not None:
            # Envoy's tracing.zipkin stats, plus spans this proxy dropped before sending.
            sent = sidecar.sender.stats if sidecar.sender is not None else None
            for name, value in (
                ("spans_sent", sent.spans_sent if sent else 0),
                ("reports_sent", sent.reports_sent if sent else 0),
                ("reports_failed", sent.reports_failed if sent else 0),
                ("reports_dropped", sent.reports_rejected if sent else 0),
                ("spans_dropped", sent.spans_dropped if sent else 0),
                ("b3_malformed", tracer.malformed),
            ):
                extra.append(f"# TYPE mesh_tracing_zipkin_{name} counter")
                extra.append(f"mesh_tracing_zipkin_{name} {value}")
        extra.append("# TYPE mesh_ready gauge")
        extra.append(f"mesh_ready {1 if sidecar.ready else 0}")
        extra.extend(sidecar.guard.prometheus())
        body = sidecar.telemetry.render(extra).encode()
        ex.reply(200, body, headers=((b"content-type", b"text/plain; version=0.0.4"),))
    elif path == "/config_dump":
        table = rt.table
        snap = sidecar.snapshot
        dump: dict[str, Any] = {
            "pod": sidecar.options.pod,
            "role": sidecar.options.role,
            "version": snap.version if snap else None,
            "hash": snap.hash if snap else None,
            "applied_at": sidecar.applied_at,
            "error": sidecar.error,
            "error_version": sidecar.error_version,
        }
        if table is not None:
            try:
                dump.update(table.describe())
            except Exception as exc:
                dump["describe_error"] = repr(exc)
            dump["version"] = snap.version if snap else None
            dump.setdefault("clusters", {n: s.describe(now) for n, s in sorted(rt.states.items())})
        _json_reply(ex, dump)
    elif path == "/clusters":
        clusters = [s.describe(now) for _, s in sorted(rt.states.items())]
        if "format=json" in query:
            _json_reply(
                ex,
                {
                    "version": sidecar.snapshot.version if sidecar.snapshot else None,
                    "clusters": clusters,
                },
            )
        else:
            text = "".join(f"{line}\n" for line in clusters_text(clusters))
            ex.reply(200, text.encode(), headers=((b"content-type", b"text/plain"),))
    elif path == "/healthz":
        ex.reply(200, b"ok\n")
    elif path == "/tap":  # the first bytes of new inbound connections (meshctl tap)
        _json_reply(ex, tap.snapshot(tap.since_of(ex.url)))
    elif path == "/certs":
        # Envoy's /certs, and what this proxy enforces (mTLS mode, policies, upstream TLS).
        _json_reply(ex, sidecar.guard.certs())
    else:
        ex.reply(
            404,
            b"admin: /ready /stats/prometheus /config_dump /clusters[?format=json] /certs /tap\n",
        )


def clusters_text(clusters: Iterable[Mapping[str, Any]]) -> list[str]:
    """Envoy's ``/clusters`` lines per host: ``<cluster>::<address>::<stat>::<value>``. A host
    outlier detection ejected has ``health_flags::/failed_outlier_check``."""
    out = []
    for cluster in clusters:
        name = cluster["name"]
        out.append(f"{name}::outlier::ejections_total::{cluster['ejections_total']}")
        for e in cluster["endpoints"]:
            prefix = f"{name}::{e['address']}"
            flags = "/failed_outlier_check" if e["ejected"] else "healthy"
            outlier = e.get("outlier") or {}
            out += [
                f"{prefix}::rq_active::{cluster['inflight']}",
                f"{prefix}::hostname::{e['pod']}",
                f"{prefix}::health_flags::{flags}",
                f"{prefix}::weight::1",
                f"{prefix}::ejected_for_seconds::{outlier.get('ejected_for_seconds', 0.0)}",
            ]
    return out


def _json_reply(ex: Exchange, data: Any) -> None:
    body = json.dumps(data, indent=1, sort_keys=True, default=str).encode()
    ex.reply(200, body, headers=((b"content-type", b"application/json"),))
