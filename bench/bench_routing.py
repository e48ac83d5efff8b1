"""Benchmark (not a test): routing decisions per second and compile time.

1. ``decide`` on a VirtualService of 20 rules with header regex matches (the request matches
   the last rule, so every rule's regex runs), beside a baseline measured in the same run: a
   direct call of a trivial function that does one dict lookup (the floor of any Python
   decision).
2. Compile time (load + analyze + compile) for a config of 500 resources.

Prints a table and a last machine-readable line:
``routing: <N> decisions/s, <U> us/decision (<R>x a dict lookup call); compile 500 resources <M> ms``
"""

from __future__ import annotations

import random
import time
import timeit

from mesh.config.loader import load_text
from mesh.config.validate import analyze
from mesh.lab.workloads import lab_entries, lab_workloads
from mesh.routing import ProxyIdentity, RequestView, compile_config, decide
from mesh.snapshot import Endpoint

COURSE = lab_workloads(lab_entries("course")).topology


def vs_with_rules(rules: int) -> str:
    http = []
    for i in range(rules - 1):
        http.append(
            f"  - match:\n    - headers:\n        end-user:\n          regex: 'user-{i}-[a-z]+'\n"
            f"        x-variant:\n          regex: '(alpha|beta|gamma)-{i}'\n"
            f"    route:\n    - destination: {{host: reviews, subset: v{1 + i % 3}}}\n"
        )
    http.append(
        "  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 70\n"
        "    - destination: {host: reviews, subset: v2}\n      weight: 30\n"
    )
    return (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n"
        "spec:\n  host: reviews\n  subsets:\n"
        + "".join(f"  - {{name: v{v}, labels: {{version: v{v}}}}}\n" for v in (1, 2, 3))
        + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n"
        "spec:\n  hosts: [reviews]\n  http:\n" + "".join(http)
    )


ENDPOINTS = [
    Endpoint(
        f"reviews-v{v}", "reviews", "127.0.0.1", 20000 + v, {"app": "reviews", "version": f"v{v}"}
    )
    for v in (1, 2, 3)
]


def bench_decide() -> tuple[float, float]:
    loaded = load_text(vs_with_rules(20), "bench.yaml")
    assert loaded.ok, loaded.issues
    table = compile_config(loaded.resources, ENDPOINTS, ProxyIdentity("bench", {}))
    request = RequestView(
        "reviews:9080",
        "/reviews/0",
        "GET",
        {"end-user": "someone-else", "x-variant": "delta-3", "user-agent": "bench"},
    )
    rng = random.Random(1)
    assert decide(table, request, rng).cluster.subset in ("v1", "v2")
    lookup = {"reviews": 1}

    def baseline() -> int:
        return lookup.get("reviews", 0)

    def run() -> object:
        return decide(table, request, rng)

    rounds = 50_000
    best = min(timeit.repeat(run, number=rounds, repeat=5)) / rounds
    floor = min(timeit.repeat(baseline, number=rounds, repeat=5)) / rounds
    return best, floor


def bench_compile(resources: int = 500) -> float:
    docs = []
    services = ("productpage", "details", "reviews", "ratings")
    for i in range(resources // 2):
        service = services[i % 4]
        docs.append(
            f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs-{i}}}\n"
            f"spec:\n  hosts: [h{i}.{service}]\n  gateways: [gw]\n  http:\n"
            f"  - match:\n    - headers: {{end-user: {{regex: 'u{i}-.*'}}}}\n"
            f"    route:\n    - destination: {{host: {service}, subset: v1}}\n"
            f"  - route:\n    - destination: {{host: {service}, subset: v1}}\n"
        )
        docs.append(
            f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: dr-{i}}}\n"
            f"spec:\n  host: {service}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n"
            "  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}\n"
        )
    docs.append(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
        "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
        "  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['*']\n"
    )
    text = "---\n".join(docs)
    started = time.perf_counter()
    loaded = load_text(text, "big.yaml")
    analyze(loaded.resources, COURSE)
    compile_config(
        loaded.resources, ENDPOINTS, ProxyIdentity("gw", {"istio": "ingressgateway"}, True)
    )
    return time.perf_counter() - started


def main() -> None:
    per_decision, floor = bench_decide()
    compile_seconds = bench_compile()
    rate = 1 / per_decision
    print(f"{'measure':<46} {'value':>14} {'baseline':>14} {'ratio':>8}")
    print(
        f"{'decide(), 20 header-regex rules, last matches':<46} {per_decision * 1e6:>11.2f} us "
        f"{floor * 1e6:>11.3f} us {per_decision / floor:>7.0f}x"
    )
    print(f"{'decisions per second (one core)':<46} {rate:>14,.0f}")
    print(f"{'compile 500 resources (load+analyze+compile)':<46} {compile_seconds * 1e3:>11.1f} ms")
    print(
        f"routing: {rate:.0f} decisions/s, {per_decision * 1e6:.2f} us/decision "
        f"({per_decision / floor:.0f}x a dict lookup call); compile 500 resources "
        f"{compile_seconds * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
