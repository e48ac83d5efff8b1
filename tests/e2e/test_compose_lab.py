"""End to end on this machine's Docker Engine: the compose lab, every strategy, chaos.

Each test starts from ``make reset`` and observes the lab only through the published
gateway port with real HTTP requests, reading ``x-served-by`` (the pods that answered, in
call order). Statistical checks state their tolerance: binomial, 99.9 % two-sided (3.29 σ).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import requests

from tests.e2e.conftest import ComposeLab

pytestmark = pytest.mark.e2e
Z_999 = 3.29


def served_by(response: requests.Response) -> list[str]:
    return [p.strip() for p in response.headers.get("x-served-by", "").split(",") if p.strip()]


def version_of(response: requests.Response, service: str) -> str | None:
    return next(
        (p.split("-", 1)[1] for p in served_by(response) if p.startswith(f"{service}-")), None
    )


def tally(lab: ComposeLab, n: int, service: str, **kwargs) -> Counter[str | None]:
    return Counter(version_of(lab.get(**kwargs), service) for _ in range(n))


def login(lab: ComposeLab, user: str = "tester") -> requests.Session:
    session = requests.Session()
    response = session.post(
        f"{lab.gateway}/login",
        data={"username": user, "passwd": "x"},
        headers={"Host": "bookinfo.local"},
        allow_redirects=False,
        timeout=15,
    )
    assert response.status_code in (200, 302, 303), response.status_code
    return session


def eventually(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    assert check(), "condition not met in time"


@pytest.fixture(autouse=True)
def baseline(lab: ComposeLab) -> None:
    lab.make("reset")


class Traffic:
    """Requests in a background thread while something is done to the lab."""

    def __init__(self, lab: ComposeLab, path: str = "/productpage") -> None:
        self.lab = lab
        self.path = path
        self.results: list[tuple[float, int, list[str], str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                response = self.lab.get(self.path, session=session, timeout=10)
                self.results.append(
                    (time.monotonic(), response.status_code, served_by(response), response.text)
                )
            except requests.RequestException as exc:
                self.results.append((time.monotonic(), 0, [], repr(exc)))
            time.sleep(0.05)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def page_ok(status: int, text: str) -> bool:
    return status == 200 and "currently unavailable" not in text


def test_baseline_everything_on_v1(lab: ComposeLab) -> None:
    for _ in range(10):
        response = lab.get()
        assert response.status_code == 200
        assert served_by(response) == ["productpage-v1", "details-v1", "reviews-v1"]
    assert lab.get("/nothing-here").status_code == 404  # no route (NR) at the gateway


def test_dark_launch(lab: ComposeLab) -> None:
    lab.make("dark-launch")
    assert tally(lab, 20, "reviews") == {"v1": 20}
    tester = login(lab)
    assert tally(lab, 20, "reviews", session=tester) == {"v2": 20}


def test_delay(lab: ComposeLab) -> None:
    lab.make("delay")
    tester = login(lab)
    for _ in range(3):
        started = time.monotonic()
        response = lab.get(session=tester)
        elapsed = time.monotonic() - started
        assert response.status_code == 200 and version_of(response, "reviews") == "v2"
        assert 2.5 <= elapsed < 2.5 + 1.0, elapsed
    started = time.monotonic()
    lab.get()
    assert time.monotonic() - started < 1.5


def test_abort(lab: ComposeLab) -> None:
    lab.make("abort")
    tester = login(lab)
    n = 200
    failed = sum(
        "reviews are currently unavailable" in lab.get(session=tester).text for _ in range(n)
    )
    # Each reviews call is aborted with p = 0.5 by productpage's sidecar; productpage tries
    # reviews twice (Bookinfo), so a page shows the error with p = 0.25.
    p = 0.25
    assert abs(failed - n * p) <= Z_999 * (n * p * (1 - p)) ** 0.5, failed
    assert all(version_of(lab.get(), "reviews") == "v1" for _ in range(10))


def test_blue_green_switch_and_back(lab: ComposeLab) -> None:
    for target, live, test in (
        ("blue-green", "v1", "v2"),
        ("blue-green-switch", "v2", "v1"),
        ("blue-green-back", "v1", "v2"),
    ):
        lab.make(target)
        assert tally(lab, 10, "productpage", host="bookinfo.local") == {live: 10}, target
        assert tally(lab, 10, "productpage", host="test.bookinfo.local") == {test: 10}, target


@pytest.mark.parametrize(("target", "v1", "v2"), [("canary-70-30", 70, 30), ("canary-5-95", 5, 95)])
def test_canary_exact_after_sigma_weight(lab: ComposeLab, target: str, v1: int, v2: int) -> None:
    lab.make(target)
    counts = tally(lab, 100, "productpage")
    assert abs(counts["v1"] - v1) <= 1 and abs(counts["v2"] - v2) <= 1, counts


def test_sticky_canary_pins_v2(lab: ComposeLab) -> None:
    lab.make("canary-sticky")
    visitor = requests.Session()
    for _ in range(30):
        if version_of(lab.get(session=visitor), "productpage") == "v2":
            break
    else:
        pytest.fail("never reached productpage v2 in 30 requests at 30 %")
    assert visitor.cookies.get("product-page") == "v2"
    assert tally(lab, 30, "productpage", session=visitor) == {"v2": 30}


def test_circuit_breaker_ejects_the_failing_instance(lab: ComposeLab) -> None:
    lab.make("circuit-breaker")
    pages = [lab.get() for _ in range(40)]
    errors = [i for i, r in enumerate(pages) if "details are currently unavailable" in r.text]
    # consecutiveErrors: 2 → the failing details-v2 instance gets two requests, then is out.
    assert len(errors) <= 2, errors
    assert all(version_of(r, "details") == "v2" for r in pages[-20:])
    assert not [i for i in errors if i >= 10]


def test_readiness_unready_pod_gets_no_traffic(lab: ComposeLab) -> None:
    lab.make("readiness")
    eventually(lambda: set(tally(lab, 9, "reviews")) == {"v1", "v2", "v3"})
    lab.make("readiness-fail")
    eventually(lambda: "v2" not in tally(lab, 6, "reviews"))
    pages = [lab.get() for _ in range(30)]
    assert Counter(version_of(p, "reviews") for p in pages) == {"v1": 15, "v3": 15}
    assert all(page_ok(p.status_code, p.text) for p in pages)
    lab.make("readiness-pass")
    eventually(lambda: "v2" in tally(lab, 9, "reviews"))


def test_killed_reviews_pod_drops_out_without_errors(lab: ComposeLab) -> None:
    lab.meshctl(
        "apply",
        "-f",
        "-",
        "--wait",
        stdin=(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n"
            "spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}\n"
        ),
    )
    eventually(lambda: set(tally(lab, 9, "reviews")) == {"v1", "v2", "v3"})
    with Traffic(lab) as traffic:
        time.sleep(2)
        killed_at = time.monotonic()
        lab.compose("kill", "reviews-v3")
        time.sleep(15)  # heartbeat TTL (10 s) + manager debounce + propagation
    after = [r for r in traffic.results if r[0] > killed_at + 12]
    assert after and all(page_ok(status, text) for _, status, _, text in after)
    assert not any("reviews-v3" in hops for _, _, hops, _ in after)
    lab.compose("up", "-d", "reviews-v3", timeout=300)
    eventually(lambda: "v3" in tally(lab, 9, "reviews"), timeout=90)


def test_manager_restart_does_not_disturb_traffic(lab: ComposeLab) -> None:
    before = lab.meshctl("status").stdout
    with Traffic(lab) as traffic:
        time.sleep(1)
        lab.compose("restart", "manager", timeout=120)
        time.sleep(3)
    assert traffic.results
    failures = [(s, t[:200]) for _, s, _, t in traffic.results if not page_ok(s, t)]
    assert not failures, failures[:3]
    lab.make("dark-launch")  # the restarted manager still publishes, with a newer version
    tester = login(lab)
    assert tally(lab, 5, "reviews", session=tester) == {"v2": 5}
    assert before


def test_invalid_yaml_in_the_host_config_dir_is_refused(lab: ComposeLab) -> None:
    bad = lab.config_dir / "broken.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews-bad}\nspec:\n  hosts: [reviews\n"
    )
    try:
        eventually(lambda: "broken.yaml" in lab.meshctl("status", check=False).stdout, timeout=20)
        assert tally(lab, 10, "reviews") == {"v1": 10}
    finally:
        bad.unlink()
    eventually(lambda: "broken.yaml" not in lab.meshctl("status", check=False).stdout, timeout=20)
