"""Metrics and access log, recorded on the hot path as a few dict updates and one append.

Primitives: ``Telemetry`` holds the counters (requests and a duration histogram keyed by
Istio-style labels, in a ``mesh.telemetry`` store, plus config versions) and renders them as
Prometheus text exposition on demand; the access log is one formatted line per request appended
to a list, handed four times a second to the writer thread, so a request never waits on a write.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from mesh.telemetry.exposition import Family, RequestMetrics, escape
from mesh.telemetry.istio import BUCKETS

if TYPE_CHECKING:
    from mesh.sidecar.files import Writer
    from mesh.sidecar.http1.exchange import Exchange

# Istio's request duration buckets (milliseconds): Envoy's defaults.
DURATION_BUCKETS_MS: tuple[float, ...] = BUCKETS
REQUESTS = Family("mesh_requests_total", "Requests handled by this proxy.")
DURATION = Family("mesh_request_duration_milliseconds", "Request duration.")

LABELS = (
    "reporter",
    "source_workload",
    "destination_workload",
    "destination_service",
    "destination_version",
    "response_code",
    "response_flags",
)

UNKNOWN = ("unknown", "unknown", "unknown")
# Access-log records formatted together (see ``Telemetry.record``): small enough that a batch
# is a few tens of microseconds of loop time.
LOG_BATCH = 64
# Formatted lines handed to the writer at once, besides the 4-a-second flush: bounds the
# text held (memory budget) at high request rates.
LOG_HANDOVER = 1024


class Telemetry:
    """Counters, histogram, config gauges and the buffered access log of one sidecar."""

    def __init__(self, pod: str, source_workload: str, log: IO[str] | None) -> None:
        self.pod = pod
        self.source_workload = source_workload
        self.metrics = RequestMetrics(REQUESTS, (DURATION,), LABELS, DURATION_BUCKETS_MS)
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

    def record(self, ex: Exchange, reporter: str) -> None:
        """One finished exchange: counters, histogram, and a queued access-log line."""
        ms = (time.monotonic() - ex.start) * 1000.0
        dst = ex.labels or UNKNOWN
        flags = ex.flags or "-"
        status = ex.status
        key = (
            reporter,
            self.source_workload if reporter == "source" else "unknown",
            dst[0],
            dst[1],
            dst[2],
            status,
            flags,
        )
        # The status is an int in the key (rendered as its digits): no str() per request.
        self.metrics.record(key, ms)  # type: ignore[arg-type]
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
