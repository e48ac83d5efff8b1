"""``fortio load``: the load client of istio.io's circuit-breaking task, for the lab.

Implements what the task runs, with fortio's flags and the lines of its report the task reads
(``Code 200 : 17 (85.0 %)``)::

    fortio load -c 2 -qps 0 -n 20 -loglevel Warning http://httpbin:8000/get

``-c`` connections, each a keep-alive HTTP/1.1 connection of its own thread (fortio's
default); ``-qps 0`` as fast as possible (else that many queries per second in all); ``-n``
calls in all, split evenly (else ``-t`` duration, default 5s); ``-loglevel`` as fortio
(Warning and above print failed calls). Requests go where the pod's app would send them: to
its sidecar when ``http_proxy`` is set (``meshlab exec``, the lab's containers), else straight
to the URL's host.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

LEVELS = ("debug", "verbose", "info", "warning", "error", "critical", "fatal")


def _duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    # fortio's flags are single-dash words (-qps, -loglevel): argparse takes them as written.
    parser = argparse.ArgumentParser(prog="fortio load", add_help=True)
    parser.add_argument("-c", type=int, default=4, help="connections (threads)")
    parser.add_argument("-qps", type=float, default=8.0, help="queries per second, 0 = max")
    parser.add_argument("-n", type=int, default=0, help="calls in all (overrides -t)")
    parser.add_argument("-t", type=_duration, default=5.0, help="duration, e.g. 5s")
    parser.add_argument("-loglevel", default="Info")
    parser.add_argument("-H", action="append", default=[], help="'Name: value' header")
    parser.add_argument("url")
    return parser.parse_args(argv)


class Connection:
    """One keep-alive connection: to the proxy (absolute-form requests) or to the host."""

    def __init__(self, url: str, proxy: str | None, timeout: float = 10.0) -> None:
        self.url = url
        target = urlsplit(proxy or url)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.path = (
            url
            if proxy
            else (urlsplit(url).path or "/")
            + ("?" + urlsplit(url).query if urlsplit(url).query else "")
        )
        self.authority = urlsplit(url).netloc
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def call(self, headers: dict[str, str]) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", self.path, headers={"Host": self.authority, **headers})
                response = self.conn.getresponse()
                response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return response.status
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    return -1
        return -1

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def load(args: argparse.Namespace, out=sys.stdout) -> Counter[int]:  # type: ignore[no-untyped-def]
    proxy = os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY") or None
    if proxy and any(
        urlsplit(args.url).hostname == h.strip()
        for h in (os.environ.get("no_proxy") or "").split(",")
        if h.strip()
    ):
        proxy = None
    headers = dict(h.split(":", 1) for h in args.H)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    threads = max(1, args.c)
    codes: Counter[int] = Counter()
    durations: list[float] = []
    lock = threading.Lock()
    verbose = LEVELS.index(args.loglevel.lower()) <= LEVELS.index("warning")
    calls = args.n
    per_thread = [calls // threads + (1 if i < calls % threads else 0) for i in range(threads)]
    interval = threads / args.qps if args.qps > 0 else 0.0
    start = time.monotonic()
    deadline = start + args.t

    def run(index: int) -> None:
        connection = Connection(args.url, proxy)
        done = 0
        next_at = time.monotonic()
        while (done < per_thread[index]) if calls else (time.monotonic() < deadline):
            if interval:
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
            began = time.monotonic()
            status = connection.call(headers)
            took = time.monotonic() - began
            with lock:
                codes[status] += 1
                durations.append(took)
            if status != 200 and verbose:
                print(f"WARN Non ok http code {status} (thread {index})", file=out)
            done += 1
        connection.close()

    what = f"for {calls} calls" if calls else f"for {args.t:g}s"
    print(
        f"Fortio (meshlab) running at {args.qps:g} queries per second, {what}: {args.url}", file=out
    )
    print(
        f"Starting at {'max' if not args.qps else f'{args.qps:g}'} qps with {threads} thread(s)",
        file=out,
    )
    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    total = sum(codes.values())
    ordered = sorted(durations)
    average = sum(ordered) / total if total else 0.0
    print(
        f"Ended after {elapsed * 1000:.1f}ms : {total} calls. qps={total / elapsed if elapsed else 0:.2f}",
        file=out,
    )
    if ordered:
        for pct in (50, 75, 90, 99, 99.9):
            value = ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]
            print(f"# target {pct:g}% {value:.4f}", file=out)
    for code, count in sorted(codes.items()):
        print(f"Code {code} : {count} ({100 * count / total:.1f} %)", file=out)
    print(
        f"All done {total} calls (plus 0 warmup) {average * 1000:.3f} ms avg, {total / elapsed if elapsed else 0:.1f} qps",
        file=out,
    )
    return codes


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "load":
        print(
            "usage: fortio load [-c N] [-qps Q] [-n N | -t DURATION] [-loglevel L] URL",
            file=sys.stderr,
        )
        return 2
    codes = load(parse_args(args[1:]))
    return 0 if codes else 1


if __name__ == "__main__":
    sys.exit(main())
