"""``python -m loadtests.verify STRATEGY``: prove that the applied scenario does what its
strategy promises, with statistics, against the running lab (compose or local processes).

    python -m loadtests.verify canary-70-30 --gateway http://127.0.0.1:8080 --requests 400

It assumes the scenario is applied already (``make verify-<strategy>`` applies it first),
prints a table (check, expected, observed, tolerance, PASS/FAIL) and exits 1 on any failure,
2 on a usage error.

Engine: Locust as a library (``locust.env.Environment`` + ``create_local_runner()``), headless,
with ``FastHttpUser`` probes that stop after a fixed number of requests each. Locust earns its
place where the statistics need volume or concurrency (the canary split, the abort rate, the
dark launch's many users, the delay's testers waiting in parallel); the order-sensitive checks
(Σweight consecutive picks from one client, a cookie visitor's sequence, errors stopping after
the ejection) run as a single Locust user, which issues its requests strictly one after
another, so the same code path serves both. Readiness also flips a pod's readiness through its
``/health/toggle`` (address from ``$MESH_DIR/registry``) and watches the published snapshot.

Primitives: ``Probe`` (what one kind of visitor requests), ``Sample`` (one attributed
response), ``run_probe(...)`` (Locust run -> samples), one ``verify_<strategy>`` per strategy
returning ``Check``s (``verdict.py``).
"""

from __future__ import annotations

# Locust first: importing it applies gevent's monkey-patching, which must precede the rest.
import locust  # isort: skip  # noqa: F401
from locust import constant, task  # isort: skip
from locust.contrib.fasthttp import FastHttpUser  # isort: skip
from locust.env import Environment  # isort: skip
from locust.exception import StopUser  # isort: skip

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent

from loadtests.attribution import Attribution, attribute
from loadtests.stats import binomial_interval, errors_by_caller, percentile, window_deviation
from loadtests.strategies import (
    ABORT_FRACTION,
    BLUE_GREEN,
    CANARY_WEIGHTS,
    CONSECUTIVE_ERRORS,
    DELAY_SECONDS,
    DELAY_TOLERANCE_SECONDS,
    LIVE_HOST,
    READINESS_POD,
    REVIEWS_ATTEMPTS,
    STRATEGIES,
    TEST_HOST,
    TESTER,
    page_abort_probability,
)
from loadtests.verdict import Check, exit_code, render

PAGE = "/productpage"
PAGE_EXPECTS = ("details", "reviews")
V1_CHAIN = ("productpage-v1", "details-v1", "reviews-v1")
DEFAULT_REQUESTS = 200
DELAY_TESTERS = 4


# --------------------------------------------------------------------------------------------
# Probes: Locust users that make a fixed number of requests and keep every response
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One kind of visitor: what it requests, as whom, with which cookies."""

    path: str = PAGE
    name: str = PAGE
    host: str = LIVE_HOST
    login: str | None = None  # POST /login as this user first (productpage sends end-user)
    keep_cookies: bool = False  # a browser (sticky canary) or a fresh client per request
    cookie: str | None = None  # a fixed Cookie header (keep_cookies=False)
    expects: tuple[str, ...] = PAGE_EXPECTS


@dataclass(slots=True)
class Sample:
    user: int
    index: int  # position in this user's own sequence
    attribution: Attribution
    sticky_cookie: bool = False  # the client held product-page=v2 when it sent this request

    @property
    def productpage(self) -> str:
        return self.attribution.productpage


@dataclass
class Settings:
    gateway: str
    requests: int = DEFAULT_REQUESTS
    host_header: str = LIVE_HOST
    test_host_header: str = TEST_HOST
    mesh_dir: str = ""
    users: int = 8
    timeout: float = 120.0
    log: Callable[[str], None] = field(default=lambda _m: None)


def run_probe(settings: Settings, probe: Probe, users: int, per_user: int) -> list[Sample]:
    """Run ``users`` Locust users of ``probe``, each making ``per_user`` requests one after
    another; return every sample (order within a user is the order it was sent)."""
    samples: list[Sample] = []
    done = {"users": 0}
    host_header = probe.host

    class ProbeUser(FastHttpUser):
        host = settings.gateway
        wait_time = constant(0)
        network_timeout = 20.0
        connection_timeout = 5.0
        counter = 0

        def on_start(self) -> None:
            ProbeUser.counter += 1
            self.user_id = ProbeUser.counter
            self.sent = 0
            if probe.login:
                self.client.post(
                    "/login",
                    data={"username": probe.login, "passwd": "x"},
                    headers={"Host": host_header},
                    name="/login",
                    allow_redirects=False,
                )

        @task
        def one(self) -> None:
            if self.sent >= per_user:
                done["users"] += 1
                raise StopUser()
            if not probe.keep_cookies and not probe.login:
                self.client.cookiejar.clear()
            headers = {"Host": host_header}
            if probe.cookie:
                headers["Cookie"] = probe.cookie
            sticky = any(
                c.name == "product-page" and c.value == "v2" for c in self.client.cookiejar
            ) or bool(probe.cookie and "product-page=v2" in probe.cookie)
            index = self.sent
            self.sent += 1
            started = time.perf_counter()
            with self.client.get(
                probe.path, name=probe.name, headers=headers, catch_response=True
            ) as r:
                elapsed = time.perf_counter() - started
                status = int(r.status_code or 0)
                body = (r.text or "") if status else ""
                result = attribute(status, r.headers or {}, body, elapsed, expects=probe.expects)
                r.success()  # verdicts are ours; Locust's failure log would only add noise
            samples.append(Sample(self.user_id, index, result, sticky))

    ProbeUser.__name__ = f"Probe{probe.name.replace('/', '_')}"
    env = Environment(user_classes=[ProbeUser], host=settings.gateway)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=max(users, 1))
    deadline = time.monotonic() + settings.timeout
    want = users * per_user
    while len(samples) < want and done["users"] < users and time.monotonic() < deadline:
        gevent.sleep(0.02)
    runner.quit()
    if len(samples) < want:
        settings.log(f"warning: {len(samples)}/{want} requests answered before the timeout")
    return samples


def split(total: int, users: int) -> tuple[int, int]:
    """(users, per_user) for about ``total`` requests over at most ``users`` users."""
    users = max(1, min(users, total))
    return users, max(1, -(-total // users))


def describe_status(status: int) -> str:
    return f"HTTP {status}" if status else "no response"


def chains(samples: list[Sample]) -> Counter[str]:
    return Counter(
        ", ".join(s.attribution.chain) or describe_status(s.attribution.status) for s in samples
    )


def top(counter: Counter[str], n: int = 2) -> str:
    return "; ".join(f"{k} x{v}" for k, v in counter.most_common(n))


def all_check(
    name: str,
    samples: list[Sample],
    ok: Callable[[Sample], bool],
    expected: str,
    what: str = "pages",
    note: str = "",
) -> Check:
    """Every sample satisfies ``ok`` (deterministic routing: no tolerance)."""
    good = sum(ok(s) for s in samples)
    observed = f"{good}/{len(samples)} {what}"
    bad = [s for s in samples if not ok(s)]
    if bad:
        observed += f" (else: {top(chains(bad), 1)})"
    return Check(name, expected, observed, "exact", bool(samples) and good == len(samples), note)


def has(entry: str) -> Callable[[Sample], bool]:
    return lambda s: entry in s.attribution.chain


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def verify_reset(st: Settings) -> list[Check]:
    n = st.requests
    anon = run_probe(st, Probe(host=st.host_header), *split(n, st.users))
    tester = run_probe(st, Probe(host=st.host_header, login=TESTER), *split(n // 4 or 1, 4))
    test = run_probe(st, Probe(host=st.test_host_header), *split(n // 4 or 1, 4))
    v1 = lambda s: s.attribution.chain == V1_CHAIN  # noqa: E731
    want = ", ".join(V1_CHAIN)
    return [
        all_check(f"anonymous, Host {st.host_header}", anon, v1, f"all {want}"),
        all_check(f"tester, Host {st.host_header}", tester, v1, f"all {want}"),
        all_check(f"anonymous, Host {st.test_host_header}", test, v1, f"all {want}"),
    ]


def verify_dark_launch(st: Settings) -> list[Check]:
    n = st.requests
    tester = run_probe(st, Probe(host=st.host_header, login=TESTER), *split(n, st.users))
    anon = run_probe(st, Probe(host=st.host_header), *split(n, st.users))
    jason = run_probe(st, Probe(host=st.host_header, login="jason"), *split(n // 4 or 1, 4))
    return [
        all_check(
            "tester sees reviews-v2",
            tester,
            has("reviews-v2"),
            "reviews-v2 on every page",
            note="end-user: tester (set by productpage after POST /login) matches the rule",
        ),
        all_check(
            "tester's reviews-v2 calls ratings",
            tester,
            has("ratings-v1"),
            "ratings-v1 on every page",
        ),
        all_check("anonymous sees reviews-v1", anon, has("reviews-v1"), "reviews-v1 on every page"),
        all_check(
            "another user (jason) sees reviews-v1",
            jason,
            has("reviews-v1"),
            "reviews-v1 on every page",
        ),
    ]


def verify_delay(st: Settings) -> list[Check]:
    baseline = run_probe(st, Probe(host=st.host_header), *split(20, 2))
    # At most DELAY_TESTERS delayed pages at once: each holds one of productpage's 8 gunicorn
    # threads for 2.5 s, and with all of them parked its /health probe (timeout 1 s) fails,
    # the pod turns unready and the gateway answers 503 UH (seen with 10 testers here).
    tester = run_probe(st, Probe(host=st.host_header, login=TESTER), DELAY_TESTERS, 3)
    anon_during = run_probe(st, Probe(host=st.host_header), *split(max(st.requests // 4, 10), 4))
    base = percentile([s.attribution.elapsed for s in baseline], 50)
    times = [s.attribution.elapsed for s in tester]
    fastest = min(times) if times else float("nan")
    median = percentile(times, 50)
    target = DELAY_SECONDS + base
    slowest_anon = max((s.attribution.elapsed for s in anon_during), default=float("nan"))
    return [
        Check(
            "every tester page waits the delay",
            f">= {DELAY_SECONDS:.2f} s",
            f"min {fastest:.3f} s over {len(times)} pages",
            "none below",
            bool(times) and fastest >= DELAY_SECONDS,
        ),
        Check(
            "tester's page time",
            f"{DELAY_SECONDS:.2f} s + baseline {base * 1000:.0f} ms = {target:.3f} s",
            f"median {median:.3f} s",
            f"±{DELAY_TOLERANCE_SECONDS * 1000:.0f} ms",
            bool(times) and abs(median - target) <= DELAY_TOLERANCE_SECONDS,
            "baseline = median anonymous page just before (same lab, no delay)",
        ),
        all_check(
            "tester's reviews still arrive (v2)",
            tester,
            has("reviews-v2"),
            "reviews-v2 on every page",
            note="2.5 s < productpage's 3 s reviews timeout",
        ),
        Check(
            "others are fast",
            f"< {DELAY_SECONDS:.1f} s, reviews-v1",
            f"max {slowest_anon:.3f} s, "
            f"{sum(has('reviews-v1')(s) for s in anon_during)}/{len(anon_during)} reviews-v1",
            "none delayed",
            bool(anon_during)
            and slowest_anon < DELAY_SECONDS
            and all(has("reviews-v1")(s) for s in anon_during),
        ),
    ]


def verify_abort(st: Settings) -> list[Check]:
    n = st.requests
    tester = run_probe(st, Probe(host=st.host_header, login=TESTER), *split(n, st.users))
    anon = run_probe(st, Probe(host=st.host_header), *split(max(n // 4, 10), 4))
    p_page = page_abort_probability()
    lo, hi = binomial_interval(len(tester), p_page)
    failed = sum(s.attribution.outcome == "reviews-unavailable" for s in tester)
    rate = failed / len(tester) if tester else float("nan")
    served = [s for s in tester if s.attribution.outcome == "ok"]
    return [
        Check(
            "tester pages without reviews",
            f"p = {ABORT_FRACTION}^{REVIEWS_ATTEMPTS}"
            f" = {p_page:.2f} ({len(tester) * p_page:.0f}/{len(tester)})",
            f"{failed}/{len(tester)} ({rate:.1%}; per call ~{rate**0.5:.0%})",
            f"99.9 % binomial [{lo}, {hi}]",
            bool(tester) and lo <= failed <= hi,
            f"measured per page: productpage calls reviews up to {REVIEWS_ATTEMPTS} times and"
            f" each call is aborted (503, FI) with p = {ABORT_FRACTION} independently, so a"
            f" page lacks reviews with p = {p_page:.2f}; the per-call rate is its square root"
            " (the calls themselves never reach the gateway)",
        ),
        all_check(
            "pages still load (degrade, not break)",
            tester,
            lambda s: s.attribution.status == 200,
            "HTTP 200",
        ),
        all_check(
            "tester's served reviews come from v2",
            served,
            has("reviews-v2"),
            "reviews-v2 when not aborted",
        ),
        all_check(
            "anonymous: no fault, reviews-v1",
            anon,
            lambda s: s.attribution.outcome == "ok" and has("reviews-v1")(s),
            "reviews-v1 on every page",
        ),
    ]


def verify_blue_green(st: Settings, name: str) -> list[Check]:
    checks = []
    hosts = {
        st.host_header: BLUE_GREEN[name][LIVE_HOST],
        st.test_host_header: BLUE_GREEN[name][TEST_HOST],
    }
    for host, version in hosts.items():
        samples = run_probe(st, Probe(host=host), *split(max(st.requests // 2, 10), st.users))
        role = "live" if host == st.host_header else "test"
        checks.append(
            all_check(
                f"Host {host} ({role})",
                samples,
                has(f"productpage-{version}"),
                f"productpage-{version} only",
            )
        )
    return checks


def window_check(samples: list[Sample], weights: dict[str, int], who: str) -> Check:
    sequence = [s.productpage or describe_status(s.attribution.status) for s in samples]
    worst, windows = window_deviation(sequence, weights)
    total = sum(weights.values())
    return Check(
        f"every {total} consecutive picks ({who})",
        "/".join(f"{v} {w}" for v, w in weights.items()),
        f"worst window off by {worst:g} over {windows} windows",
        "within 1 (Lab decision 3)",
        windows > 0 and worst <= 1,
        "smooth weighted round-robin at the gateway; needs no other traffic through the"
        " gateway meanwhile (stop the Locust swarm first)",
    )


def split_check(samples: list[Sample], weights: dict[str, int], who: str) -> Check:
    total = sum(weights.values())
    first = next(iter(weights))
    p = weights[first] / total
    n = len(samples)
    count = sum(s.productpage == first for s in samples)
    others = {v: sum(s.productpage == v for s in samples) for v in weights}
    lo, hi = binomial_interval(n, p)
    unknown = n - sum(others.values())
    return Check(
        f"split ({who})",
        f"{first} {p:.0%} ({n * p:.0f}/{n})",
        "/".join(f"{v} {c}" for v, c in others.items()) + (f", other {unknown}" if unknown else ""),
        f"99.9 % binomial [{lo}, {hi}]",
        n > 0 and lo <= count <= hi and unknown == 0,
    )


def verify_canary(st: Settings, name: str) -> list[Check]:
    weights = CANARY_WEIGHTS[name]
    total = sum(weights.values())
    sequential = run_probe(st, Probe(host=st.host_header), 1, 2 * total)
    concurrent = run_probe(
        st, Probe(host=st.host_header), *split(max(st.requests, 2 * total), st.users)
    )
    return [
        window_check(sequential, weights, "1 client, 2xΣweight requests"),
        split_check(concurrent, weights, f"{min(st.users, st.requests)} concurrent users"),
        tally_check(sequential + concurrent, weights),
    ]


def tally_check(samples: list[Sample], weights: dict[str, int]) -> Check:
    """Every request this verify sent, by the version that served it: what the console's
    gateway -> productpage edges count over a window holding exactly this run."""
    counts = {v: sum(s.productpage == v for s in samples) for v in weights}
    n = len(samples)
    unknown = n - sum(counts.values())
    total = sum(weights.values())
    return Check(
        f"served by (all {n} requests)",
        "/".join(f"{v} {w / total:.0%}" for v, w in weights.items()),
        "/".join(f"{v} {c}" for v, c in counts.items()) + (f", other {unknown}" if unknown else ""),
        "each answered by a configured version",
        n > 0 and unknown == 0,
        "the console's graph over a window holding only this run shows the same shares",
    )


def verify_canary_sticky(st: Settings) -> list[Check]:
    weights = CANARY_WEIGHTS["canary-sticky"]
    total = sum(weights.values())
    checks = []
    pinned = run_probe(st, Probe(host=st.host_header, cookie="product-page=v2"), *split(20, 4))
    checks.append(
        all_check("Cookie product-page=v2", pinned, has("productpage-v2"), "productpage-v2 only")
    )
    among = run_probe(
        st, Probe(host=st.host_header, cookie="session=x; product-page=v2; a=b"), *split(20, 4)
    )
    checks.append(
        all_check("cookie among others", among, has("productpage-v2"), "productpage-v2 only")
    )
    # Browsers: each keeps its cookies; after the first v2 page (which sets the cookie)
    # every later request must be v2.
    visitors = min(st.users, 8)
    browsing = run_probe(st, Probe(host=st.host_header, keep_cookies=True), visitors, 30)
    by_user: dict[int, list[Sample]] = {}
    for s in browsing:
        by_user.setdefault(s.user, []).append(s)
    # Judge the requests sent while the visitor's jar held product-page=v2 (set by v2).
    landed = sum(any(s.sticky_cookie for s in seq) for seq in by_user.values())
    later = [s for s in browsing if s.sticky_cookie]
    later_v2 = sum(s.productpage == "v2" for s in later)
    checks.append(
        Check(
            "cookie visitors stay on v2",
            "v2 for every request carrying it",
            f"{later_v2}/{len(later)} on v2 ({landed}/{len(by_user)} visitors got the cookie)",
            "exact",
            landed > 0 and bool(later) and later_v2 == len(later),
            "the visitor keeps the cookie productpage v2 set",
        )
    )
    anon_seq = run_probe(st, Probe(host=st.host_header), 1, 2 * total)
    checks.append(window_check(anon_seq, weights, "no cookie, 1 client"))
    anon = run_probe(st, Probe(host=st.host_header), *split(max(st.requests, total), st.users))
    checks.append(split_check(anon, weights, "no cookie, concurrent"))
    return checks


def verify_circuit_breaker(st: Settings) -> list[Check]:
    api = Probe(
        path="/api/v1/products/0",
        name="/api/v1/products/[id]",
        host=st.host_header,
        expects=("details",),
    )
    n = max(st.requests // 4, 40)
    sequence = run_probe(st, api, 1, n)
    sequence.sort(key=lambda s: s.index)
    # Outlier state lives in each calling proxy: judge every productpage sidecar on its own
    # calls. Round robin over the two details-v2 instances sends every other call to the
    # failing one, so its consecutiveErrors errors come within 2 x consecutiveErrors calls.
    callers = errors_by_caller(
        [(f"productpage-{s.productpage or '?'}", s.attribution.failed) for s in sequence]
    )
    window = 2 * CONSECUTIVE_ERRORS
    early = {c: [i for i in errs if i < window] for c, (_, errs) in callers.items()}
    late = {c: [i for i in errs if i >= window] for c, (_, errs) in callers.items()}

    def describe(found: dict[str, list[int]]) -> str:
        return "; ".join(
            f"{c}: {len(found[c])}"
            + (f" (its call #{', #'.join(str(i + 1) for i in found[c])})" if found[c] else "")
            for c in sorted(found)
        )

    after = sum(max(0, calls - window) for calls, _ in callers.values())
    pages = run_probe(st, Probe(host=st.host_header), *split(max(st.requests // 2, 20), st.users))
    return [
        Check(
            "errors until the ejection",
            f"<= {CONSECUTIVE_ERRORS} per calling proxy (consecutiveErrors)",
            describe(early),
            f"within its first {window} calls",
            all(len(e) <= CONSECUTIVE_ERRORS for e in early.values())
            and "productpage-?" not in callers,
            "0 is fine too: an instance ejected by an earlier run stays out for 5 min",
        ),
        Check(
            "no errors after the ejection",
            "0",
            f"{sum(map(len, late.values()))} in the {after} later calls",
            "exact",
            after > 0 and not any(late.values()),
            f"{len(sequence)} sequential calls of /api/v1/products/0 (details via productpage)",
        ),
        all_check(
            "details-v2 serves every page",
            pages,
            lambda s: has("details-v2")(s) and s.attribution.outcome == "ok",
            "details-v2, no 'details unavailable'",
        ),
    ]


# -- readiness: flip reviews-v2's readiness and watch the snapshot ------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def snapshot_pods(mesh: Path) -> tuple[int, set[str]]:
    """(version, ready endpoint pods) of the published snapshot."""
    data = _read_json(mesh / "snapshot" / "snapshot.json") or {}
    pods = {str(e.get("pod")) for e in data.get("endpoints", []) if e.get("ready", True)}
    return int(data.get("version") or 0), pods


def proxies_synced(mesh: Path, version: int) -> bool:
    """Every live sidecar (fresh heartbeat) applied at least ``version``."""
    now = time.time()
    for path in (mesh / "status").glob("*.json"):
        data = _read_json(path)
        if not data or path.name == "manager.json" or now - float(data.get("heartbeat") or 0) > 15:
            continue
        if int(data.get("version") or 0) < version:
            return False
    return True


def set_ready(mesh: Path, pod: str, ready: bool) -> str:
    """POST /health/toggle?ready=... through the pod's sidecar (its registry address)."""
    import requests  # after locust: gevent-patched sockets

    record = _read_json(mesh / "registry" / f"{pod}.json")
    if record is None:
        raise RuntimeError(f"no registry record for {pod} in {mesh / 'registry'}")
    response = requests.post(
        f"http://{record['address']}:{record['port']}/health/toggle",
        params={"ready": "true" if ready else "false"},
        timeout=5,
        proxies={"http": "", "https": ""},
    )
    return f"{response.status_code} {response.text.strip()[:80]}"


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds it took until ``check()``; raises TimeoutError."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError
        gevent.sleep(0.1)
    return time.monotonic() - started


def verify_readiness(st: Settings) -> list[Check]:
    if not st.mesh_dir or not (Path(st.mesh_dir) / "registry").is_dir():
        return [
            Check(
                "mesh directory",
                "$MESH_DIR/registry readable",
                st.mesh_dir or "unset",
                "-",
                False,
                "readiness needs --mesh-dir (env MESH_DIR) to find the pod",
            )
        ]
    mesh = Path(st.mesh_dir)
    pod = READINESS_POD
    n = max(st.requests // 4, 20)

    def reviews(samples: list[Sample]) -> Counter[str]:
        return Counter(e for s in samples for e in s.attribution.chain if e.startswith("reviews-"))

    def synced_without(present: bool) -> bool:
        version, pods = snapshot_pods(mesh)
        return (pod in pods) == present and proxies_synced(mesh, version)

    checks = []
    before_samples = run_probe(st, Probe(host=st.host_header), *split(n, 4))
    before = reviews(before_samples)
    checks.append(
        Check(
            f"{pod} serves while ready",
            "> 0 of the pages",
            f"{before[pod]}/{len(before_samples)} ({top(before, 3)})",
            "-",
            before[pod] > 0,
        )
    )
    try:
        st.log(f"readiness: {pod} -> unready: {set_ready(mesh, pod, False)}")
        try:
            took = wait_for(lambda: synced_without(False), 30)
            st.log(f"readiness: {pod} left the snapshot, proxies synced after {took:.1f} s")
        except TimeoutError:
            checks.append(
                Check(f"{pod} leaves the endpoints", "within 30 s", "still listed", "-", False)
            )
            return checks
        during_samples = run_probe(st, Probe(host=st.host_header), *split(2 * n, st.users))
        during = reviews(during_samples)
        unavailable = sum(s.attribution.outcome == "reviews-unavailable" for s in during_samples)
        checks.append(
            Check(
                f"no traffic to unready {pod}",
                "0",
                f"{during[pod]} of {len(during_samples)} pages ({top(during, 3)})",
                "exact",
                bool(during_samples) and during[pod] == 0,
            )
        )
        checks.append(
            Check(
                "no errors while it is out",
                "0 pages without reviews",
                f"{unavailable} of {len(during_samples)}",
                "exact",
                unavailable == 0,
                "the other reviews pods take its share",
            )
        )
    finally:
        st.log(f"readiness: {pod} -> ready: {set_ready(mesh, pod, True)}")
    try:
        took = wait_for(lambda: synced_without(True), 30)
        st.log(f"readiness: {pod} back in the snapshot after {took:.1f} s")
    except TimeoutError:
        checks.append(Check(f"{pod} returns when ready", "within 30 s", "not listed", "-", False))
        return checks
    after_samples = run_probe(st, Probe(host=st.host_header), *split(n, 4))
    after = reviews(after_samples)
    checks.append(
        Check(
            f"{pod} serves again once ready",
            "> 0 of the pages",
            f"{after[pod]}/{len(after_samples)} ({top(after, 3)})",
            "-",
            after[pod] > 0,
        )
    )
    return checks


VERIFIERS: dict[str, Callable[[Settings], list[Check]]] = {
    "reset": verify_reset,
    "dark-launch": verify_dark_launch,
    "delay": verify_delay,
    "abort": verify_abort,
    "blue-green": lambda st: verify_blue_green(st, "blue-green"),
    "blue-green-switch": lambda st: verify_blue_green(st, "blue-green-switch"),
    "blue-green-back": lambda st: verify_blue_green(st, "blue-green-back"),
    "canary-70-30": lambda st: verify_canary(st, "canary-70-30"),
    "canary-5-95": lambda st: verify_canary(st, "canary-5-95"),
    "canary-sticky": verify_canary_sticky,
    "circuit-breaker": verify_circuit_breaker,
    "readiness": verify_readiness,
}
assert tuple(VERIFIERS) == STRATEGIES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.verify",
        description="Verify that the applied scenario does what its strategy promises.",
    )
    parser.add_argument("strategy", choices=STRATEGIES)
    parser.add_argument(
        "--gateway",
        default=os.environ.get("MESHLAB_GATEWAY") or "http://localhost:8080",
        help="env MESHLAB_GATEWAY",
    )
    parser.add_argument(
        "--requests",
        "-n",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"sample size of the main check (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument("--users", type=int, default=8, help="concurrent Locust users (8)")
    parser.add_argument("--host-header", default=os.environ.get("MESHLAB_HOST_HEADER") or LIVE_HOST)
    parser.add_argument(
        "--test-host-header", default=os.environ.get("MESHLAB_TEST_HOST_HEADER") or TEST_HOST
    )
    parser.add_argument(
        "--mesh-dir",
        default=os.environ.get("MESH_DIR", ""),
        help="the lab's mesh directory, for readiness (env MESH_DIR)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per Locust run before giving up"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.users < 1:
        parser.error("--requests and --users must be at least 1")
    # Locust logs every spawn and stop at INFO; the table is the output here.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    logging.getLogger("locust").setLevel(logging.INFO if args.verbose else logging.ERROR)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    settings = Settings(
        gateway=args.gateway.rstrip("/"),
        requests=args.requests,
        host_header=args.host_header,
        test_host_header=args.test_host_header,
        mesh_dir=args.mesh_dir,
        users=args.users,
        timeout=args.timeout,
        log=log,
    )
    started = time.monotonic()
    checks = VERIFIERS[args.strategy](settings)
    preamble = [
        f"gateway {settings.gateway} (Host {settings.host_header}); engine: Locust "
        f"{locust.__version__} as a library, FastHttpUser probes; {time.monotonic() - started:.1f} s",
    ]
    print(render(args.strategy, checks, preamble))
    return exit_code(checks)


if __name__ == "__main__":
    sys.exit(main())
