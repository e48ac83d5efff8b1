"""The compiled route table's shapes: smooth weighted picks, virtual-host lookup on one port."""

from __future__ import annotations

from mesh.routing.routes import MEMO_LIMIT, RouteConfig, VirtualHost, WeightedPicker


def vhost(*names: str) -> VirtualHost:
    return VirtualHost(names=names, rules=[])


def test_smooth_weighted_picks_are_exact_in_every_window_of_the_total() -> None:
    picker = WeightedPicker([70, 30])
    picks = [picker.pick() for _ in range(1000)]
    for start in range(0, 1000, 10):
        assert picks[start : start + 10].count(0) == 7
    # Smooth, not merely exact: the 30 % never comes twice in a row.
    assert all(not (a == b == 1) for a, b in zip(picks, picks[1:], strict=False))


def test_a_zero_weight_is_never_picked() -> None:
    picker = WeightedPicker([0, 100])
    assert {picker.pick() for _ in range(50)} == {1}


def test_exact_names_then_the_longest_wildcard_then_the_catch_all() -> None:
    routes = RouteConfig()
    reviews, wide, narrow, other = (
        vhost("reviews"),
        vhost("*.local"),
        vhost("*.bookinfo.local"),
        vhost("*"),
    )
    routes.add("reviews", reviews)
    routes.add("*.local", wide)
    routes.add("*.bookinfo.local", narrow)
    routes.add("*", other)
    assert routes.resolve("reviews:9080") is reviews
    assert routes.resolve("Reviews") is reviews
    assert routes.resolve("test.bookinfo.local") is narrow
    assert routes.resolve("x.local") is wide
    # A wildcard needs at least one label in front of its suffix.
    assert routes.lookup(".local") is other
    assert routes.resolve("example.com") is other


def test_served_hosts_name_each_vhost_once_wildcards_and_catch_all_last() -> None:
    routes = RouteConfig()
    reviews = VirtualHost(names=("reviews", "reviews.default", "reviews.default.svc"), rules=[])
    routes.add("reviews", reviews)
    routes.add("reviews.default", reviews)
    routes.add("*.bookinfo.local", vhost("*.bookinfo.local"))
    assert routes.served_hosts() == ("reviews", "*.bookinfo.local")
    routes.add("*", vhost("*"))
    assert routes.served_hosts() == ("reviews", "*.bookinfo.local", "*")


def test_the_authority_memo_stays_bounded_whatever_names_clients_send() -> None:
    routes = RouteConfig()
    routes.add("*", vhost("*"))
    for i in range(MEMO_LIMIT * 3):
        routes.resolve(f"host-{i}.example")
    assert len(routes.by_authority) <= MEMO_LIMIT
