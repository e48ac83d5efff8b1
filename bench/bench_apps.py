"""Throughput of the Bookinfo apps under gunicorn, without the mesh: requests/s from wrk.

Every app process is pinned to one core (``--app-core``) and wrk to another
(``--wrk-core``), so the figure is "what one core of Python serves", not what the machine
does. Measured:

- ``/productpage`` on productpage v1, which calls details v1 and reviews v2 (-> ratings v1):
  the whole chain shares the one core, as four pods on one node would;
- ``/reviews/0`` on reviews v1 (no upstream call) and on reviews v2 (one call to ratings).

Run: ``.venv/bin/python bench/bench_apps.py [--duration 10] [--connections 16]``
(needs ``wrk`` and ``taskset``: ``apt-get install -y wrk util-linux``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from services.launch import free_port, start, stop


@dataclass(frozen=True)
class Result:
    name: str
    chain: str
    requests_per_second: float
    p50: str
    p99: str
    errors: int


def run_wrk(url: str, seconds: int, connections: int, core: int) -> str:
    command = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    completed = subprocess.run(
        [*command, "--latency", url], capture_output=True, text=True, check=True
    )
    return completed.stdout


def parse_wrk(output: str) -> tuple[float, str, str, int]:
    """Requests/s, p50, p99 and failed requests (socket errors plus non-2xx/3xx)."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:(.*)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return rps, p50, p99, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--app-core", type=int, default=1)
    parser.add_argument("--wrk-core", type=int, default=0)
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "taskset") if not shutil.which(tool)]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install -y wrk util-linux", file=sys.stderr)
        return 2

    pin = ("taskset", "-c", str(args.app_core))
    ports = {name: free_port() for name in ("ratings", "details", "reviews-v2", "reviews-v1", "pp")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    plan = [
        ("ratings", ports["ratings"], {}),
        ("details", ports["details"], {}),
        ("reviews", ports["reviews-v2"], {"SERVICE_VERSION": "v2", "RATINGS_URL": url["ratings"]}),
        ("reviews", ports["reviews-v1"], {"SERVICE_VERSION": "v1"}),
        (
            "productpage",
            ports["pp"],
            {"DETAILS_URL": url["details"], "REVIEWS_URL": url["reviews-v2"]},
        ),
    ]
    targets = [
        ("/productpage", "productpage-v1 -> details-v1, reviews-v2 -> ratings-v1", "pp"),
        ("/reviews/0", "reviews-v1 (no upstream)", "reviews-v1"),
        ("/reviews/0", "reviews-v2 -> ratings-v1", "reviews-v2"),
    ]
    processes = []
    results = []
    try:
        for service, port, env in plan:
            processes.append(start(service, port, env, prefix=pin))
        for path, chain, key in targets:
            target = url[key] + path
            run_wrk(target, 1, args.connections, args.wrk_core)  # warm-up: pools, caches
            output = run_wrk(target, args.duration, args.connections, args.wrk_core)
            results.append(Result(path, chain, *parse_wrk(output)))
    finally:
        stop(*processes)

    print(
        f"gunicorn gthread (1 worker, 8 threads) pinned to core {args.app_core}; "
        f"wrk -t1 -c{args.connections} -d{args.duration}s pinned to core {args.wrk_core}"
    )
    print(f"{'endpoint':<14}{'chain':<56}{'req/s':>9}{'p50':>10}{'p99':>10}{'errors':>8}")
    for r in results:
        print(
            f"{r.name:<14}{r.chain:<56}{r.requests_per_second:>9.0f}"
            f"{r.p50:>10}{r.p99:>10}{r.errors:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
