"""Bookinfo visitors as Locust users (FastHttpUser), every response attributed.

Users (weights: a workshop crowd is mostly anonymous readers):

- ``AnonymousReader`` (6, tag ``anonymous``) -- ``/productpage`` and the JSON API; forgets its
  cookies after every request, so it never sticks to a canary.
- ``Tester`` (2, tag ``tester``) -- logs in (``POST /login``, form ``username=tester``), so
  productpage sends ``end-user: tester``: dark launch, delay and abort apply to it.
- ``CookieVisitor`` (2, tag ``sticky``) -- a browser that keeps its cookies: once productpage v2
  gives it ``product-page=v2`` it stays on v2 under ``canary-sticky``. It tallies
  ``kept-v2`` / ``left-v2`` (left v2 although it carried the cookie), counted since the
  config last changed, so the room sees the difference between ``canary-70-30`` and
  ``canary-sticky``.
- ``BlueGreenTester`` (1, tag ``bluegreen``) -- the same pages with ``Host: test.bookinfo.local``,
  only while a route names that host (blue/green); its tally is scoped ``test/`` so the live
  view shows both hosts apart.

Tasks carry finer tags too (``page``, ``api``, ``login``): ``locust --tags tester`` runs only
the tester; users left without tasks by a tag filter are dropped at test start (Locust
otherwise fails to spawn them). Class names on the command line work as usual
(``locust -f loadtests/locustfile.py Tester``).

Think time: ``MESHLAB_WAIT`` (``0.5,2`` s; ``0`` to measure throughput). The gateway is
Locust's host field (``--host``), else ``MESHLAB_GATEWAY``
(default ``http://localhost:8080``); the Host header ``MESHLAB_HOST_HEADER``
(default ``bookinfo.local``). Requests are grouped with ``name=`` (``/api/v1/products/[id]``).
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import between, events, tag, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests import live
from loadtests.attribution import Attribution, attribute
from loadtests.plan import wait_bounds
from loadtests.strategies import LIVE_HOST, TEST_HOST, TESTER

GATEWAY = os.environ.get("MESHLAB_GATEWAY", "").strip() or "http://localhost:8080"
HOST_HEADER = os.environ.get("MESHLAB_HOST_HEADER", "").strip() or LIVE_HOST
TEST_HOST_HEADER = os.environ.get("MESHLAB_TEST_HOST_HEADER", "").strip() or TEST_HOST
PRODUCT_IDS = (0,)  # Bookinfo has one book; ids are still grouped as [id]

PAGE_EXPECTS = ("details", "reviews")


WAIT = wait_bounds(os.environ.get("MESHLAB_WAIT", ""))


class BookinfoUser(FastHttpUser):
    """Shared plumbing: Host header, attribution, the live tally, pass/fail marking."""

    abstract = True
    host = GATEWAY
    wait_time = between(*WAIT)
    host_header = HOST_HEADER
    scope = ""  # tally prefix: "test" for the blue/green test host
    visitor = "anonymous"  # who, in the Versions tab's outcome rows (the user's tag)
    keep_cookies = False
    # A delayed page (2.5 s) must come back, not time out: productpage itself gives up on
    # reviews after 2 x 3 s.
    network_timeout = 15.0
    connection_timeout = 5.0

    def fetch(
        self, path: str, name: str | None = None, expects: tuple[str, ...] = ()
    ) -> Attribution:
        if not self.keep_cookies:
            self.client.cookiejar.clear()  # a fresh visitor every time: no sticky canary
        headers = {"Host": self.host_header}
        with self.client.get(path, name=name or path, headers=headers, catch_response=True) as r:
            elapsed = (r.request_meta or {}).get("response_time", 0.0) / 1000.0
            status = int(r.status_code or 0)
            body = (r.text or "") if status else ""
            result = attribute(status, r.headers or {}, body, elapsed, expects=expects)
            self.observe(result)
            if result.failed:
                r.failure(describe(result))
            else:
                r.success()
        return result

    def observe(self, result: Attribution) -> None:
        live.record(result, scope=self.scope, visitor=self.visitor)


def describe(result: Attribution) -> str:
    """The failure message Locust groups by: outcome and flag, not the varying chain."""
    detail = f" {result.flag}" if result.flag else ""
    return f"{result.outcome} (HTTP {result.status}{detail})"


class AnonymousReader(BookinfoUser):
    weight = 6

    @tag("anonymous", "page")
    @task(5)
    def productpage(self) -> None:
        self.fetch("/productpage", expects=PAGE_EXPECTS)

    @tag("anonymous", "api")
    @task(1)
    def products(self) -> None:
        self.fetch("/api/v1/products")

    @tag("anonymous", "api")
    @task(1)
    def product(self) -> None:
        pid = random.choice(PRODUCT_IDS)
        self.fetch(f"/api/v1/products/{pid}", "/api/v1/products/[id]", ("details",))

    @tag("anonymous", "api")
    @task(2)
    def reviews(self) -> None:
        pid = random.choice(PRODUCT_IDS)
        self.fetch(f"/api/v1/products/{pid}/reviews", "/api/v1/products/[id]/reviews", ("reviews",))

    @tag("anonymous", "api")
    @task(1)
    def ratings(self) -> None:
        pid = random.choice(PRODUCT_IDS)
        self.fetch(f"/api/v1/products/{pid}/ratings", "/api/v1/products/[id]/ratings", ("ratings",))


class LoggedInUser(BookinfoUser):
    """Logs in on start (the Flask session cookie must be kept, so cookies stay)."""

    abstract = True
    keep_cookies = True
    username = TESTER

    def on_start(self) -> None:
        self.login()

    def login(self) -> None:
        # No redirect-following: the 302 is the login's answer, the page is fetched (and
        # attributed) as its own request.
        with self.client.post(
            "/login",
            data={"username": self.username, "passwd": "x"},
            headers={"Host": self.host_header},
            name="/login",
            allow_redirects=False,
            catch_response=True,
        ) as r:
            if r.status_code in (200, 302, 303):
                r.success()
            else:
                r.failure(f"login failed (HTTP {r.status_code})")


class Tester(LoggedInUser):
    # Two in eleven: enough testers (about 4 of the default 20 users) that a tester-only fault
    # shows within seconds in the Versions tab's "tester: ..." rows, which count it against
    # the testers' own requests. Under the delay scenario each tester page holds one of
    # productpage's gunicorn threads for 2.5 s: 10 testers once exhausted its 8 threads (the
    # /health probe timed out, the gateway answered 503 UH to everyone); productpage runs 32
    # threads in the lab (mesh/lab/topology.py), so 100 users (18 testers) still fit.
    weight = 2
    visitor = "tester"

    @tag("tester", "page")
    @task(5)
    def productpage(self) -> None:
        self.fetch("/productpage", expects=PAGE_EXPECTS)

    @tag("tester", "api")
    @task(1)
    def reviews(self) -> None:
        pid = random.choice(PRODUCT_IDS)
        self.fetch(f"/api/v1/products/{pid}/reviews", "/api/v1/products/[id]/reviews", ("reviews",))

    @tag("tester", "login")
    @task(1)
    def relogin(self) -> None:
        # Log out and back in now and then, as a trainee does when trying the dark launch.
        self.fetch("/logout", "/logout")
        self.login()


class CookieVisitor(BookinfoUser):
    weight = 2
    keep_cookies = True
    visitor = "sticky"

    def on_start(self) -> None:
        self.pinned = False  # received product-page=v2 (from productpage v2)

    @tag("sticky", "page")
    @task
    def productpage(self) -> None:
        was_pinned = self.pinned
        result = self.fetch("/productpage", expects=PAGE_EXPECTS)
        if was_pinned and result.productpage:
            kept = result.productpage == "v2"
            live.record_labels(["kept-v2" if kept else "left-v2"], self.visitor)
        self.pinned = self.pinned or self.has_sticky_cookie()

    def has_sticky_cookie(self) -> bool:
        return any(c.name == "product-page" and c.value == "v2" for c in self.client.cookiejar)


class BlueGreenTester(BookinfoUser):
    """Visits only while a route names its host (``live.blue_green_active``): under the
    baseline or a canary the gateway serves the test host through ``*`` like any other, and
    its row would repeat the live host's split as noise."""

    weight = 1
    host_header = TEST_HOST_HEADER
    scope = "test"
    visitor = "bluegreen"

    @tag("bluegreen", "page")
    @task(3)
    def productpage(self) -> None:
        if live.blue_green_active():
            self.fetch("/productpage", "test: /productpage", PAGE_EXPECTS)

    @tag("bluegreen", "api")
    @task(1)
    def reviews(self) -> None:
        if live.blue_green_active():
            self.fetch("/api/v1/products/0/reviews", "test: /api/v1/products/[id]/reviews",
                       ("reviews",))  # fmt: skip


USER_CLASSES: tuple[type[BookinfoUser], ...] = (
    AnonymousReader,
    Tester,
    CookieVisitor,
    BlueGreenTester,
)


@events.test_start.add_listener
def _drop_users_without_tasks(environment: Any, **_kw: Any) -> None:
    """After ``--tags`` filtering, a user class with no task left cannot be spawned (Locust
    warns "instantiating it will fail"); drop it so ``--tags tester`` just works."""
    classes = getattr(environment, "user_classes", None)
    if not classes or not (
        environment.tags or environment.exclude_tags or _parsed_tags(environment)
    ):
        return
    kept = [cls for cls in classes if cls.tasks]
    if kept and len(kept) < len(classes):
        classes[:] = kept


def _parsed_tags(environment: Any) -> bool:
    options = getattr(environment, "parsed_options", None)
    return bool(
        options and (getattr(options, "tags", None) or getattr(options, "exclude_tags", None))
    )
