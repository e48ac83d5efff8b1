"""Locust's Versions tab from plain values (loadtests.view)."""

from __future__ import annotations

from loadtests.attribution import attribute
from loadtests.view import labels_for, table_rows
from loadtests.window import RollingTally

T0 = 1_000_000.0
PAGE = ("details", "reviews")


def page(chain: str, body: str = "", status: int = 200, headers: dict | None = None):
    return attribute(status, {"x-served-by": chain, **(headers or {})}, body, expects=PAGE)


def rows_by_name(tally: RollingTally, now: float) -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in table_rows(tally, now)}


def test_labels_put_versions_under_the_host_and_outcomes_under_the_visitor() -> None:
    ok = page("productpage-v1, details-v1, reviews-v2, ratings-v1")
    assert labels_for(ok, "", "tester") == [
        "details-v1", "productpage-v1", "ratings-v1", "reviews-v2", "tester:requests",
    ]  # fmt: skip
    degraded = page(
        "productpage-v1, details-v1", "Sorry, product reviews are currently unavailable"
    )
    assert labels_for(degraded, "test", "bluegreen") == [
        "test/details-v1", "test/productpage-v1", "bluegreen:requests",
        "bluegreen:reviews-unavailable",
    ]  # fmt: skip


def test_a_tester_only_abort_is_a_share_of_the_testers_requests() -> None:
    # 18 anonymous pages and 2 tester pages a second; half the tester pages lose reviews:
    # 5 % of all pages, but 50 % of the tester's, which is the row the room reads.
    tally = RollingTally()
    tally.mark(12, T0)
    fine = page("productpage-v1, details-v1, reviews-v1")
    broken = page("productpage-v1, details-v1", "Sorry, product reviews are currently unavailable")
    for second in range(10):
        for _ in range(18):
            tally.add(labels_for(fine, "", "anonymous"), T0 + second)
        tally.add(labels_for(fine, "", "tester"), T0 + second)
        tally.add(labels_for(broken, "", "tester"), T0 + second)
    rows = rows_by_name(tally, T0 + 9.5)  # the window: seconds 0..9
    row = rows["tester: reviews unavailable"]
    assert row["now"] == "█" * 5 + "░" * 5 + " 50%" and row["window"] == "50% of 20"
    assert row["since"] == "10"
    v1 = rows["productpage (bookinfo.local) v1"]
    assert v1["now"] == "█" * 10 + " 100%" and v1["window"] == "100% of 200"
    names = list(rows)
    assert names.index("OUTCOMES: share of that visitor's requests (last 10 s)") < names.index(
        "tester: reviews unavailable"
    )
    assert names[0].startswith("config v12, live since")
    assert rows[names[0]]["now"] == "charts: /versions"


def test_rows_without_traffic_in_the_window_are_hidden() -> None:
    tally = RollingTally(window=10)
    tally.add(labels_for(page("productpage-v2, details-v1, reviews-v1"), "test", "bluegreen"), T0)
    tally.add(labels_for(page("productpage-v1, details-v1, reviews-v1"), "", "anonymous"), T0 + 30)
    names = list(rows_by_name(tally, T0 + 31))
    assert "productpage (bookinfo.local) v1" in names
    assert not [n for n in names if "test.bookinfo.local" in n or n.startswith("bluegreen")]


def test_sticky_left_is_a_share_of_the_pinned_pages_and_restarts_with_the_config() -> None:
    tally = RollingTally()
    tally.mark(3, T0)
    for i in range(10):
        tally.add(["sticky:kept-v2" if i < 7 else "sticky:left-v2"], T0 + 1)
    rows = rows_by_name(tally, T0 + 2)
    assert rows["sticky: left v2 despite its cookie"]["window"] == "30% of 10"
    assert rows["sticky: left v2 despite its cookie"]["since"] == "3"
    tally.mark(4, T0 + 3)  # make canary-sticky: a new config
    assert rows_by_name(tally, T0 + 4)["sticky: left v2 despite its cookie"]["since"] == "0"


def test_the_gateways_flag_header_names_the_outcome() -> None:
    reply = attribute(404, {"x-meshlab-response-flags": "NR"}, 'no route: Host "localhost"')
    assert (reply.outcome, reply.flag) == ("local-reply", "NR")
    assert attribute(404, {}, 'no route: Host "x" ...\nHosts served: a').flag == "NR"
