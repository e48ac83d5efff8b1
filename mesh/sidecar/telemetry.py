"""Metrics and access log, recorded on the hot path as one tuple concatenation, a few list
increments and one append.

Primitives: ``Telemetry`` holds Istio's standard metrics (``mesh.telemetry.istio``: a request
counter and three histograms keyed by Istio's labels) plus the lab's config gauges, and
renders them as Prometheus text exposition on demand. The labels up to ``request_protocol``
are a *prefix* computed once per peer pair and cached (``source_prefix`` per upstream
endpoint, by the cluster state at install time; ``inbound_prefix`` per caller's metadata
header): a request adds only its code, flags and security policy. The access log is one
formatted line per request appended to a list, handed four times a second to the writer
thread, so a request never waits on a write.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from mesh.telemetry import istio
from mesh.telemetry.exposition import RequestMetrics, escape
from mesh.telemetry.istio import (
    DESTINATION,
    MUTUAL_TLS,
    PLAINTEXT,
    SOURCE,
    UNKNOWN,
    UNKNOWN_PEER,
    Peer,
    Service,
    label_prefix,
    new_request_metrics,
    service_of_host,
)

if TYPE_CHECKING:
    from mesh.sidecar.files import Writer
    from mesh.sidecar.http1.exchange import Exchange
    from mesh.sidecar.tracing import Tracer
    from mesh.snapshot import Endpoint

# Access-log records formatted together (see ``Telemetry.record``): small enough that a batch
# is a few tens of microseconds of loop time.
LOG_BATCH = 64
# Formatted lines handed to the writer at once, besides the 4-a-second flush: bounds the
# text held (memory budget) at high request rates.
LOG_HANDOVER = 1024
# Distinct callers' metadata values remembered by the inbound listener (a lab has a few
# dozen workloads; a flood of forged values only clears the cache, never grows it).
PEER_CACHE = 256
NO_GRPC = ""


def endpoint_peer(endpoint: Endpoint) -> Peer:
    """An upstream endpoint as Istio's endpoint metadata describes it. A record without a
    workload (an older registry) names it ``<app>-<version>``, the lab's Deployments' names."""
    labels = endpoint.labels
    workload = endpoint.workload
    if not workload:
        app = labels.get("app") or endpoint.service
        version = labels.get("version")
        workload = f"{app}-{version}" if version else app
    return Peer.of_pod(workload, endpoint.namespace, labels)


class Telemetry:
    """Istio's request metrics, config gauges and the buffered access log of one proxy."""

    def __init__(
        self,
        pod: str,
        workload: str,
        log: IO[str] | None,
        *,
        peer: Peer | None = None,
        service: Service | None = None,
        principal: str = UNKNOWN,
    ) -> None:
        self.pod = pod
        # This proxy's workload: the source of what it sends, the destination of what its
        # inbound listener receives (``service``: the Service it is registered under).
        self.peer = peer or Peer.of_pod(workload, "default", {})
        self.service = service or Service()
        self.principal = principal
        self.metrics: RequestMetrics = new_request_metrics()
        self.config_version: int | None = None
        self.config_applied = 0
        self.config_refused = 0
        self.bad_requests = 0
        self.handler_errors = 0
        self.log = log
        self.log_buf: list[str] = []
        self.log_pending: list[tuple[Any, ...]] = []
        # The sidecar's file writer, for hand-overs between flushes (None: only flush_log).
        self.writer: Writer | None = None
        self._stamp_sec = -1
        self._stamp = ""
        self._by_host: dict[str, tuple[str, ...]] = {}
        self._callers: dict[tuple[str | None, bool], tuple[str, ...]] = {}
        # False: no metrics, no spans (``MESH_TELEMETRY=off``, the benchmark's baseline).
        self.enabled = True
        self.tracer: Tracer | None = None
        self.unknown_source = label_prefix(SOURCE, self.peer, UNKNOWN_PEER, Service())
        self.unknown_inbound = label_prefix(DESTINATION, UNKNOWN_PEER, self.peer, self.service)

    # --- label prefixes (computed once per peer pair) ------------------------------------

    def source_prefix(self, host: str, endpoint: Endpoint | None = None) -> tuple[str, ...]:
        """The labels of a request this proxy sends to ``endpoint`` of ``host`` (None: no
        endpoint answered, e.g. an injected abort or an overflow: destination unknown)."""
        if endpoint is None:
            prefix = self._by_host.get(host)
            if prefix is None:
                prefix = self._by_host[host] = label_prefix(
                    SOURCE, self.peer, UNKNOWN_PEER, service_of_host(host)
                )
            return prefix
        return label_prefix(SOURCE, self.peer, endpoint_peer(endpoint), service_of_host(host))

    def inbound_prefix(self, metadata: str | None, mtls: bool) -> tuple[str, ...]:
        """The labels of a request the inbound listener received with the caller's
        ``x-envoy-peer-metadata`` value (None: a caller outside the mesh)."""
        key = (metadata, mtls)
        prefix = self._callers.get(key)
        if prefix is None:
            if len(self._callers) >= PEER_CACHE:
                self._callers.clear()
            me = self.peer
            if mtls and self.principal != UNKNOWN:
                me = Peer(me.workload, me.namespace, me.app, me.version, self.principal,
                          me.cluster, me.canonical_service, me.canonical_revision)  # fmt: skip
            prefix = self._callers[key] = label_prefix(
                DESTINATION, istio.decode_peer(metadata, mtls), me, self.service
            )
        return prefix

    # --- the request path ---------------------------------------------------------------

    def record(self, ex: Exchange, reporter: str) -> None:
        """One finished exchange: Istio's counter and histograms, and a queued access-log
        line. ``connection_security_policy`` is ``unknown`` at the source and what the
        connection was at the destination."""
        ms = (time.monotonic() - ex.start) * 1000.0
        flags = ex.flags or "-"
        status = ex.status
        if self.enabled:
            prefix = ex.labels
            if reporter == SOURCE:
                prefix = prefix or self.unknown_source
                policy = UNKNOWN
            else:
                prefix = prefix or self.unknown_inbound
                policy = MUTUAL_TLS if ex.mtls else PLAINTEXT
            # The series of (prefix, code, flags, policy), found by the cached prefix's
            # identity: no 20-label key built and hashed per request. The status is an int
            # in the key (rendered as its digits): no str() per request.
            self.metrics.record3(
                prefix, (id(prefix), status, NO_GRPC, flags, policy), ms, ex.bytes_in, ex.bytes_out
            )
            if ex.trace is not None and self.tracer is not None:
                self.tracer.finished(ex, reporter, ms)
        if self.log is not None:
            # The line's fields now (references, no formatting); the text is made in batches
            # of LOG_BATCH (``_format``), warm in cache, which costs a fraction of one
            # f-string per request made between two context switches. The batch bound keeps
            # the buffer (and the strings it holds) small.
            hget = ex.hdict.get
            pending = self.log_pending
            pending.append(
                (
                    ex.start, ex.method, ex.url, ex.http11, status, flags, ex.bytes_in,
                    ex.bytes_out, ms, hget("x-forwarded-for"), hget("user-agent"),
                    ex.request_id or hget("x-request-id"), ex.authority or hget("host"),
                    ex.upstream_host, ex.cluster_name, reporter,
                )
            )  # fmt: skip
            if len(pending) >= LOG_BATCH:
                self._format()
                if len(self.log_buf) >= LOG_HANDOVER and self.writer is not None:
                    self.flush_log(self.writer)

    def _format(self) -> None:
        """Turn the pending records into access-log lines (on the loop's thread)."""
        pending = self.log_pending
        if not pending:
            return
        self.log_pending = []
        # Monotonic start -> wall clock (Envoy's START_TIME); the offset is read once.
        offset = time.time() - time.monotonic()
        stamp_sec = self._stamp_sec
        stamp = self._stamp
        out = self.log_buf
        for (start, method, url, http11, status, flags, bytes_in, bytes_out, ms, xff, ua,
             rid, authority, upstream, cluster, reporter) in pending:  # fmt: skip
            now = start + offset
            sec = int(now)
            if sec != stamp_sec:
                stamp_sec = sec
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            out.append(
                f'[{stamp}.{int((now - sec) * 1000):03d}Z] "{method} '
                f"{url.decode('latin-1') if url else '-'} "
                f'{"HTTP/1.1" if http11 else "HTTP/1.0"}" {status} {flags} {bytes_in} '
                f'{bytes_out} {int(ms)} "{xff or "-"}" "{ua or "-"}" "{rid or "-"}" '
                f'"{authority or "-"}" "{upstream or "-"}" {cluster or "-"} {reporter}\n'
            )
        self._stamp_sec = stamp_sec
        self._stamp = stamp

    # --- access log -------------------------------------------------------------------

    def flush_log(self, writer: Writer | None = None) -> None:
        """Hand the queued lines over: written on ``writer``'s thread, or right here."""
        if self.log is None:
            return
        self._format()
        buf = self.log_buf
        if not buf:
            return
        self.log_buf = []
        if writer is not None:
            writer.submit(self._join_and_write, buf)
        else:
            self._join_and_write(buf)

    def _join_and_write(self, buf: list[str]) -> None:
        self._write("".join(buf))

    def _write(self, text: str) -> None:
        log = self.log
        if log is None:
            return
        try:
            log.write(text)
            log.flush()
        except (OSError, ValueError):
            pass

    # --- exposition ---------------------------------------------------------------------

    def render(self, extra: Iterable[str] = ()) -> str:
        out = self.metrics.render_lines()
        out.append("# HELP mesh_config_version Snapshot version applied by this proxy.")
        out.append("# TYPE mesh_config_version gauge")
        out.append(
            f'mesh_config_version{{pod="{escape(self.pod)}"}} '
            f"{self.config_version if self.config_version is not None else -1}"
        )
        out.append("# TYPE mesh_config_applied_total counter")
        out.append(f"mesh_config_applied_total {self.config_applied}")
        out.append("# TYPE mesh_config_refused_total counter")
        out.append(f"mesh_config_refused_total {self.config_refused}")
        out.append("# TYPE mesh_bad_requests_total counter")
        out.append(f"mesh_bad_requests_total {self.bad_requests}")
        out.extend(extra)
        return "\n".join(out) + "\n"


def open_log(spec: str) -> IO[str] | None:
    """``-`` = stdout, ``off`` = none, else a file path (appended)."""
    if spec == "off":
        return None
    if spec == "-":
        return sys.stdout
    return open(spec, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
