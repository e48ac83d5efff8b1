"""A stand-in proxy for the observability tests: Istio's metrics from scripted requests.

Until the sidecars emit Istio's metrics themselves, this process is what Prometheus scrapes:
it serves ``/stats/prometheus`` from the real ``mesh.telemetry`` store (``new_request_metrics``,
``label_prefix``, ``request_key``), fed with requests generated at ``--rate`` per second from a
JSON list of flows ``{"source": {peer}, "destination": {peer}, "service": NAME, "weight": W,
"code": 200, "flags": "", "ms": 12.0}`` — split by smooth weighted round-robin, so every
block of Σweight requests is exact. The flows can be replaced while it runs by writing a new
JSON file to ``--flows`` (re-read every 0.5 s), the way a config change moves traffic.

``python tests/integration/telemetry_exporter.py --port P --flows FILE --rate 50``
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mesh.telemetry.istio import (  # noqa: E402
    SOURCE,
    Peer,
    Service,
    label_prefix,
    new_request_metrics,
    request_key,
)


def load_flows(path: Path) -> list[dict]:  # type: ignore[type-arg]
    flows = json.loads(path.read_text())
    for flow in flows:
        src = flow["source"]
        dst = flow["destination"]
        flow["key_prefix"] = label_prefix(
            SOURCE,
            Peer.of_pod(src["workload"], src.get("namespace", "default"), src.get("labels", {})),
            Peer.of_pod(dst["workload"], dst.get("namespace", "default"), dst.get("labels", {}))
            if dst.get("workload")
            else Peer(),
            Service.of(flow["service"], "default"),
        )
        flow["current"] = 0
    return flows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--flows", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    metrics = new_request_metrics()
    lock = threading.Lock()
    state = {"flows": load_flows(args.flows), "mtime": args.flows.stat().st_mtime_ns}

    def generate() -> None:
        interval = 1.0 / args.rate
        next_at = time.monotonic()
        next_check = next_at
        while True:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.5
                mtime = args.flows.stat().st_mtime_ns
                if mtime != state["mtime"]:
                    state["flows"], state["mtime"] = load_flows(args.flows), mtime
            flows = state["flows"]
            while next_at <= now and flows:
                total = sum(f["weight"] for f in flows)
                for flow in flows:  # smooth weighted round-robin (nginx)
                    flow["current"] += flow["weight"]
                best = max(flows, key=lambda f: f["current"])
                best["current"] -= total
                key = request_key(best["key_prefix"], best.get("code", 200), best.get("flags", ""))
                with lock:
                    metrics.record(key, best.get("ms", 10.0), 0, 512)
                next_at += interval
            time.sleep(0.005)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/stats/prometheus":
                self.send_error(404)
                return
            with lock:
                body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    threading.Thread(target=generate, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"exporter on {args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
