"""The rolling version tally and its SVG chart (loadtests.window)."""

from __future__ import annotations

from loadtests.window import RollingTally, bar, colour, render_svg

T0 = 1_000_000.0


def test_share_over_the_window_follows_a_rollback():
    tally = RollingTally(window=10, history=60)
    for second in range(10):
        for _ in range(7):
            tally.add(["productpage-v1", "reviews-v1"], T0 + second)
        for _ in range(3):
            tally.add(["productpage-v2", "reviews-v1"], T0 + second + 0.5)
    assert tally.share("productpage", T0 + 9) == {"v1": 0.7, "v2": 0.3}
    assert tally.share("reviews", T0 + 9) == {"v1": 1.0}
    # Rollback: v1 only from second 10 on; after a full window v2 is gone from the share.
    for second in range(10, 20):
        tally.add(["productpage-v1"], T0 + second)
    assert tally.share("productpage", T0 + 19) == {"v1": 1.0}
    assert tally.totals["productpage-v2"] == 30


def test_versions_ignore_outcomes_and_other_scopes():
    counts = {
        "reviews-v2": 3,
        "reviews-unavailable": 2,
        "flag:UH": 1,
        "test/productpage-v2": 4,
        "productpage-v1": 5,
    }
    assert RollingTally.versions(counts, "reviews") == {"v2": 3}
    assert RollingTally.versions(counts, "productpage") == {"v1": 5}
    assert RollingTally.versions(counts, "test/productpage") == {"v2": 4}


def test_series_has_one_point_per_complete_second_and_gaps_without_traffic():
    tally = RollingTally(window=2, history=30)
    tally.add(["productpage-v1"], T0)
    tally.add(["productpage-v2"], T0 + 1)
    tally.add(["productpage-v2"], T0 + 4)  # the current second: still filling, not drawn
    points = tally.series("productpage", T0 + 4, span=6)
    assert [t for t, _ in points] == [int(T0) + i for i in range(-2, 4)]
    shares = [s for _, s in points]
    assert shares == [{}, {}, {"v1": 1.0}, {"v2": 1.0}, {}, {}]


def test_a_blue_green_switch_is_a_step_not_a_ramp():
    # 10 pages a second on v1, then on v2 from second 30: the per-second share jumps from
    # 0 % to 100 % in one second (a 10 s rolling window would have shown a ramp).
    tally = RollingTally(window=10, history=120)
    for second in range(60):
        version = "v1" if second < 30 else "v2"
        for i in range(10):
            tally.add([f"productpage-{version}"], T0 + second + i / 10)
    v2 = [shares.get("v2", 0.0) for _, shares in tally.series("productpage", T0 + 60, span=60)]
    assert v2 == [0.0] * 30 + [1.0] * 30
    assert tally.second_share("productpage", T0 + 31.5) == {"v2": 1.0}
    assert tally.share("productpage", T0 + 34) == {"v1": 0.5, "v2": 0.5}  # the window lags


def test_config_marks_and_counts_since_the_last_change():
    tally = RollingTally()
    assert tally.config_version is None
    assert tally.mark(7, T0)
    tally.add(["sticky-left"], T0 + 1)
    assert not tally.mark(7, T0 + 2)  # unchanged: no new mark, counts kept
    assert tally.since_mark["sticky-left"] == 1
    assert tally.mark(8, T0 + 3)
    assert tally.since_mark["sticky-left"] == 0 and tally.totals["sticky-left"] == 1
    assert tally.marks == [(int(T0), 7), (int(T0) + 3, 8)] and tally.config_version == 8


def test_bar_is_ten_text_blocks_then_the_share():
    assert bar(0.7) == "█" * 7 + "░" * 3 + " 70%"
    assert bar(0.04) == "░" * 10 + " 4%"
    assert bar(1.0) == "█" * 10 + " 100%"


def test_history_is_bounded():
    tally = RollingTally(window=5, history=10)
    tally.add(["productpage-v1"], T0)
    tally.add(["productpage-v1"], T0 + 100)
    assert list(tally.buckets) == [int(T0) + 100]
    assert tally.totals["productpage-v1"] == 2  # totals are since the last reset


def test_drain_and_merge_move_buckets_from_worker_to_master():
    worker, master = RollingTally(), RollingTally()
    worker.track_undrained = True
    worker.add(["productpage-v1"], T0)
    worker.add(["productpage-v2"], T0 + 1)
    drained = worker.drain()
    assert drained == {str(int(T0)): {"productpage-v1": 1}, str(int(T0) + 1): {"productpage-v2": 1}}
    assert worker.drain() == {}
    master.merge(drained, T0 + 1)
    assert master.share("productpage", T0 + 1) == {"v1": 0.5, "v2": 0.5}


def test_nothing_is_kept_for_a_master_that_does_not_exist():
    tally = RollingTally()
    tally.add(["productpage-v1"], T0)
    assert tally.drain() == {}


def test_reset_clears_everything():
    tally = RollingTally()
    tally.add(["productpage-v1"], T0)
    tally.reset()
    assert tally.totals == {} and tally.share("productpage", T0) == {}


def test_render_svg_stacks_one_polygon_per_version():
    series = [(int(T0) + i, {"v1": 0.7, "v2": 0.3}) for i in range(5)]
    svg = render_svg(series, title="productpage <live>")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polygon") == 2
    assert colour("v1") in svg and colour("v2") in svg
    assert "v1 70%" in svg and "v2 30%" in svg
    assert "productpage &lt;live&gt;" in svg  # the title is escaped


def test_render_svg_without_traffic_says_so():
    svg = render_svg([(int(T0), {})], title="reviews")
    assert "<polygon" not in svg and "no traffic yet" in svg


def test_colours_are_stable():
    assert colour("v1") == colour("v1") and colour("v9") == colour("v9")


def test_render_svg_is_full_width_labels_time_and_marks_config_versions():
    series = [(int(T0) + i, {"v1": 1.0}) for i in range(121)]
    svg = render_svg(series, title="productpage", marks=[(int(T0) + 60, 12), (int(T0) - 5, 11)])
    assert 'width="100%"' in svg and "viewBox=" in svg
    for label in ("-120 s", "-90 s", "-60 s", "-30 s", "now", "seconds ago"):
        assert f">{label}" in svg, label
    assert "config v12" in svg and "config v11" not in svg  # v11 is before the span
