"""Every scenario of DESIGN.md's table, applied to the running local lab and observed through
the gateway with real HTTP requests (``x-served-by`` names every pod that answered)."""

from __future__ import annotations

import math
import re
import time
from collections import Counter

import pytest

from tests.helpers import page_hops

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

V1_PAGE = ["productpage-v1", "details-v1", "reviews-v1"]


def binomial_bounds(n: int, p: float, z: float = 3.29) -> tuple[float, float]:
    """Two-sided 99.9 % normal-approximation interval for a Binomial(n, p) count."""
    sd = math.sqrt(n * p * (1 - p))
    return n * p - z * sd, n * p + z * sd


def test_baseline_everything_on_v1(gw):
    for host in ("bookinfo.local", "test.bookinfo.local"):
        for _ in range(5):
            response = gw.get(host=host)
            assert response.status_code == 200
            assert gw.served_by(response) == V1_PAGE


def test_dark_launch_tester_gets_reviews_v2_everyone_else_v1(gw):
    gw.apply("dark-launch")
    tester = gw.login("tester")
    for _ in range(5):
        chain = gw.served_by(gw.get(session=tester))
        assert "reviews-v2" in chain and "ratings-v1" in chain, chain
    for _ in range(5):
        assert gw.served_by(gw.get()) == V1_PAGE
    other = gw.login("jason")
    assert gw.served_by(gw.get(session=other)) == V1_PAGE


def test_delay_tester_waits_2_5_s_others_are_fast(gw):
    gw.apply("delay")
    tester = gw.login("tester")
    started = time.monotonic()
    response = gw.get(session=tester)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed >= 2.5, elapsed
    assert "reviews-v2" in gw.served_by(response)
    for _ in range(3):
        started = time.monotonic()
        response = gw.get()
        assert time.monotonic() - started < 1.5
        assert gw.served_by(response) == V1_PAGE


def test_abort_half_of_testers_reviews_calls_fail(gw):
    gw.apply("abort")
    tester = gw.login("tester")
    n = 120
    failed = 0
    for _ in range(n):
        response = gw.get(session=tester)
        assert response.status_code == 200  # the page degrades, it does not break
        if not any(p.startswith("reviews-") for p in gw.served_by(response)):
            failed += 1
    # productpage tries reviews twice (Bookinfo's deliberate retry) and each call is aborted
    # with p = 0.5, so a page shows "reviews unavailable" with p = 0.25.
    low, high = binomial_bounds(n, 0.25)
    assert low <= failed <= high, (failed, low, high)
    for _ in range(10):
        assert gw.served_by(gw.get()) == V1_PAGE  # anonymous users never see a fault


def test_blue_green_switch_and_back(gw):
    def pages(host: str) -> set[str]:
        return {gw.served_by(gw.get(host=host))[0] for _ in range(6)}

    gw.apply("blue-green")
    assert pages("bookinfo.local") == {"productpage-v1"}
    assert pages("test.bookinfo.local") == {"productpage-v2"}
    gw.apply("blue-green-switch")
    assert pages("bookinfo.local") == {"productpage-v2"}
    assert pages("test.bookinfo.local") == {"productpage-v1"}
    gw.apply("blue-green-back")
    assert pages("bookinfo.local") == {"productpage-v1"}
    assert pages("test.bookinfo.local") == {"productpage-v2"}


@pytest.mark.parametrize(("name", "v1", "v2"), [("canary-70-30", 70, 30), ("canary-5-95", 5, 95)])
def test_canary_weights_are_exact_over_one_window(gw, name, v1, v2):
    gw.apply(name)
    counts = Counter(gw.served_by(gw.get())[0] for _ in range(v1 + v2))
    # Lab decision 3: smooth weighted round robin, so each window of Σweight picks matches the
    # weights to within one request (a window need not start at the scheduler's origin).
    assert abs(counts["productpage-v1"] - v1) <= 1, counts
    assert abs(counts["productpage-v2"] - v2) <= 1, counts
    assert counts["productpage-v1"] + counts["productpage-v2"] == v1 + v2


def test_sticky_canary_cookie_pins_v2(gw):
    gw.apply("canary-sticky")
    pinned = gw.client()
    pinned.cookies.set("product-page", "v2")
    assert {gw.served_by(gw.get(session=pinned))[0] for _ in range(10)} == {"productpage-v2"}
    # Anonymous requests without cookies: 70/30 (fresh session each time, nothing sticks).
    counts = Counter(gw.served_by(gw.get())[0] for _ in range(100))
    assert abs(counts["productpage-v1"] - 70) <= 1, counts
    # A browser that landed on v2 once got the cookie from v2 and stays there.
    browser = gw.client()
    for _ in range(10):
        first = gw.served_by(gw.get(session=browser))[0]
        if first == "productpage-v2":
            break
    assert browser.cookies.get("product-page") == "v2"
    assert {gw.served_by(gw.get(session=browser))[0] for _ in range(5)} == {"productpage-v2"}


def test_circuit_breaker_ejects_the_failing_details_v2_instance(gw):
    gw.apply("circuit-breaker")
    statuses = [gw.get("/api/v1/products/0").status_code for _ in range(30)]
    failures = [i for i, status in enumerate(statuses) if status != 200]
    # Round robin over the two v2 instances: the failing one answers 503 twice in a row (as
    # seen by productpage's sidecar) and is ejected; after that, no errors.
    assert len(failures) <= 2, statuses
    assert all(i < 6 for i in failures), statuses
    later = [gw.get("/api/v1/products/0").status_code for _ in range(20)]
    assert later == [200] * 20
    chain = gw.served_by(gw.get())
    assert "details-v2" in chain, chain


def test_readiness_an_unready_pod_gets_no_traffic_until_ready(gw):
    gw.apply("readiness")
    lab = gw.lab
    seen = Counter(p for _ in range(10) for p in gw.served_by(gw.get()) if p.startswith("reviews"))
    assert seen["reviews-v2"] > 0, seen
    try:
        lab.set_ready("reviews-v2", False)
        gw.wait_until(lambda: "reviews-v2" not in gw.endpoint_pods(), what="reviews-v2 unready")
        time.sleep(0.5)  # every sidecar follows the published snapshot
        pages = [gw.get() for _ in range(20)]
        after = Counter(p for r in pages for p in gw.served_by(r) if p.startswith("reviews"))
        assert after["reviews-v2"] == 0, after
        # Routed like a Service (no subset): the other pods take its share, nobody errs.
        assert set(after) == {"reviews-v1", "reviews-v3"}, after
        assert not [r for r in pages if "currently unavailable" in r.text]
    finally:
        lab.set_ready("reviews-v2", True)
    gw.wait_until(lambda: "reviews-v2" in gw.endpoint_pods(), what="reviews-v2 ready again")
    time.sleep(0.5)
    back = Counter(p for _ in range(10) for p in gw.served_by(gw.get()) if p.startswith("reviews"))
    assert back["reviews-v2"] > 0, back


def test_the_page_shows_the_aborted_hop_with_the_sidecars_flag(gw):
    # Through the real mesh: productpage's sidecar injects the abort and says FI in
    # x-meshlab-response-flags; the page names the hop, its status and the flag. A page
    # fails both tries with p = 0.25: 40 pages all fine has p = 0.75^40 < 1e-5.
    gw.apply("abort")
    tester = gw.login("tester")
    seen = []
    for _ in range(40):
        seen = page_hops(gw.get(session=tester).text)
        if any(hop.startswith("reviews ✗ 503 FI") for hop in seen):
            break
    failed = next(hop for hop in seen if hop.startswith("reviews ✗"))
    assert re.fullmatch(r"reviews ✗ 503 FI \d+ ms \(retried after ✗ 503 FI\)", failed), seen


def test_the_page_shows_the_delayed_hops_time(gw):
    gw.apply("delay")
    hops = page_hops(gw.get(session=gw.login("tester")).text)
    reviews = next(hop for hop in hops if hop.startswith("reviews-v2"))
    seconds = float(re.fullmatch(r"reviews-v2 (\d+\.\d+) s", reviews).group(1))
    assert seconds >= 2.5, hops
