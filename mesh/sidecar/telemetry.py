"""Metrics and access log, recorded on the hot path as a few dict updates and one append.

Primitives: ``Telemetry`` holds the counters (requests and a duration histogram keyed by
Istio-style labels, outlier ejections, config versions) and renders them as Prometheus text
exposition on demand; the access log is one formatted line per request appended to a list, handed
four times a second to the writer thread, so a request never waits on a write.

Why hand-written exposition instead of ``prometheus_client``: its labelled counters take a
lock and a dict lookup chain per increment, several microseconds per request on a hot path
where the whole per-hop budget is ~100 µs; here an increment is one tuple-keyed dict update.
"""

from __future__ import annotations

import sys
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesh.sidecar.downstream import Exchange
    from mesh.sidecar.files import Writer

# Istio's request duration buckets (milliseconds).
DURATION_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
)  # fmt: skip

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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_text(names: Iterable[str], values: Iterable[Any]) -> str:
    return ",".join(f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True))


class Telemetry:
    """Counters, histogram, config gauges and the buffered access log of one sidecar."""

    def __init__(self, pod: str, source_workload: str, log: IO[str] | None) -> None:
        self.pod = pod
        self.source_workload = source_workload
        self.requests: dict[tuple[Any, ...], int] = {}
        self.durations: dict[tuple[Any, ...], list[float]] = {}
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
        self._nb = len(DURATION_BUCKETS_MS)

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
        requests = self.requests
        hist = self.durations.get(key)
        if hist is None:
            # buckets..., sum
            hist = self.durations[key] = [0.0] * (self._nb + 1)
            requests[key] = 1
        else:
            requests[key] += 1
        nb = self._nb
        idx = bisect_left(DURATION_BUCKETS_MS, ms)
        if idx < nb:  # beyond the last bucket: only +Inf (derived from the count)
            hist[idx] += 1
        hist[nb] += ms
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
        out: list[str] = []
        out.append("# HELP mesh_requests_total Requests handled by this proxy.")
        out.append("# TYPE mesh_requests_total counter")
        for key, n in sorted(self.requests.items(), key=lambda kv: str(kv[0])):
            out.append(f"mesh_requests_total{{{_label_text(LABELS, key)}}} {n}")
        out.append("# HELP mesh_request_duration_milliseconds Request duration.")
        out.append("# TYPE mesh_request_duration_milliseconds histogram")
        for key, hist in sorted(self.durations.items(), key=lambda kv: str(kv[0])):
            labels = _label_text(LABELS, key)
            cumulative = 0.0
            for bound, count in zip(DURATION_BUCKETS_MS, hist, strict=False):
                cumulative += count
                out.append(
                    f'mesh_request_duration_milliseconds_bucket{{{labels},le="{bound:g}"}} '
                    f"{int(cumulative)}"
                )
            total = self.requests.get(key, 0)
            out.append(f'mesh_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {total}')
            out.append(f"mesh_request_duration_milliseconds_sum{{{labels}}} {hist[-1]:.3f}")
            out.append(f"mesh_request_duration_milliseconds_count{{{labels}}} {total}")
        out.append("# HELP mesh_config_version Snapshot version applied by this proxy.")
        out.append("# TYPE mesh_config_version gauge")
        out.append(
            f'mesh_config_version{{pod="{_escape(self.pod)}"}} '
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
