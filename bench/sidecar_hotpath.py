"""Pure-Python cost of one request through the sidecar's fast path, without sockets.

A fake client transport feeds a request into ``Downstream``, a fake pooled upstream
connection answers with a 1 KB response, and the loop repeats; the time per request is the
proxy's own work (parsing, routing with the benchmark's 10-rule VirtualService, headers,
telemetry), i.e. what optimising the hot path can win, apart from syscalls.

    python bench/sidecar_hotpath.py [-n 20000] [--profile] [--telemetry on|metrics|off]

``--telemetry on`` (default): Istio's metrics, metadata exchange and b3 with 100 % sampling,
spans handed to a sender that makes reports of them as the real one does (``report_pieces``, a
report per 100 spans) and drops the bytes (the socket part is the sender's task);
``metrics``: the same without spans (no collector: b3 headers still propagated);
``off``: what ``MESH_TELEMETRY=off`` leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sidecar import bench_resources  # noqa: E402

from mesh.config.loader import normal_documents  # noqa: E402
from mesh.routing import ProxyIdentity, compile_snapshot  # noqa: E402
from mesh.sidecar.http1.client import Pool, UpstreamConn  # noqa: E402
from mesh.sidecar.http1.server import ConnTracker, Downstream  # noqa: E402
from mesh.sidecar.pipeline import start_routed  # noqa: E402
from mesh.sidecar.runtime import Runtime  # noqa: E402
from mesh.sidecar.telemetry import Telemetry  # noqa: E402
from mesh.sidecar.tracing import make_tracer  # noqa: E402
from mesh.snapshot import Endpoint, Snapshot  # noqa: E402
from mesh.spansender import report_pieces  # noqa: E402
from mesh.telemetry.istio import peer_lines  # noqa: E402

REQUEST = (b"GET /1k.bin HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n"
           b"Accept: */*\r\n\r\n")  # fmt: skip
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 02:00:00 GMT\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n"
            b"Last-Modified: Thu, 26 Nov 2026 01:00:00 GMT\r\nConnection: keep-alive\r\n"
            b'ETag: "1-400"\r\nAccept-Ranges: bytes\r\n\r\n' + b"x" * 1024)  # fmt: skip


class Sink(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def write(self, data) -> None:  # type: ignore[no-untyped-def,override]
        self.n += len(data)

    def get_extra_info(self, name, default=None):  # type: ignore[no-untyped-def]
        return ("127.0.0.1", 1) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--telemetry", choices=("on", "metrics", "off"), default="on")
    args = ap.parse_args()
    loop = asyncio.new_event_loop()
    pool = Pool(loop)
    telemetry = Telemetry("bench", "client-v1", None)
    rt = Runtime(loop, pool, telemetry, random.Random(1))
    if args.telemetry in ("on", "metrics"):

        class Sender:
            """Encodes what it is given as the real sender does, a report body per
            ``BATCH`` spans (``report_pieces``), and drops the bytes: every span's encoding
            is counted here, only the socket write is not."""

            BATCH = 100

            def __init__(self) -> None:
                self.pending: list[Any] = []
                self.bytes = 0

            def submit(self, span: Any) -> bool:
                pending = self.pending
                pending.append(span)
                if len(pending) >= self.BATCH:
                    self.bytes += sum(map(len, report_pieces(pending)[0]))
                    self.pending = []
                return True

        tracer = make_tracer(
            "client", "client", "default", "bench", "v1", "127.0.0.1", 9080, False,
            Sender() if args.telemetry == "on" else None, rt.rng,  # type: ignore[arg-type]
        )  # fmt: skip
        rt.tracer = telemetry.tracer = tracer
        rt.peer_lines = peer_lines(False, "127.0.0.1", "bench", "default", "client-v1",
                                   {"app": "client", "version": "v1"}, "default")  # fmt: skip
    else:
        telemetry.enabled = False
    ep = Endpoint("up", "bench", "127.0.0.1", 1, {"app": "bench", "version": "v1"})
    snap = Snapshot(1, normal_documents(bench_resources("bench")), (ep,))
    rt.install(compile_snapshot(snap, ProxyIdentity("bench", {"app": "client"})))
    up = UpstreamConn(pool, ep.key)
    up.connection_made(Sink())
    pool.release(up, True)

    class Tracker(ConnTracker):
        def on_exchange_done(self, ex) -> None:  # type: ignore[no-untyped-def]
            telemetry.record(ex, "source")

    conn = Downstream(lambda ex: start_routed(rt, ex, None, False), Tracker(loop), 80)
    client = Sink()
    conn.connection_made(client)

    def one() -> None:
        conn.data_received(REQUEST)
        up.data_received(RESPONSE)

    for _ in range(2000):
        one()
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.n):
            one()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    t0 = time.perf_counter()
    for _ in range(args.n):
        one()
    dt = time.perf_counter() - t0
    assert client.n > 0 and pool.idle[ep.key], "the fast path did not complete"
    print(
        f"{dt / args.n * 1e6:.1f} us of Python per proxied request ({args.n} requests, "
        f"telemetry {args.telemetry})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
