"""Endpoint load balancers: round robin, random, least request, consistent hash."""

from __future__ import annotations

import random
from collections import Counter

from mesh.config.model import ConsistentHashLB, HTTPCookie, LoadBalancerSettings, TrafficPolicy
from mesh.routing.balance import ConsistentHash, LeastRequest, RandomPick, RoundRobin, make_balancer
from mesh.routing.decision import RequestView
from tests.helpers import pods

ENDPOINTS = pods("reviews:v1", "reviews:v1", "reviews:v1")
REQUEST = RequestView("reviews")


def test_default_is_round_robin_and_cycles_evenly() -> None:
    balancer = make_balancer(TrafficPolicy())
    assert isinstance(balancer, RoundRobin)
    picks = Counter(balancer.pick(ENDPOINTS, REQUEST, random.Random(1)).key for _ in range(300))
    assert set(picks.values()) == {100}


def test_exclude_skips_tried_hosts_but_never_returns_nothing() -> None:
    balancer = RoundRobin()
    tried = {ENDPOINTS[0].key, ENDPOINTS[1].key}
    assert balancer.pick(ENDPOINTS, REQUEST, random.Random(1), tried).key == ENDPOINTS[2].key
    everyone = {e.key for e in ENDPOINTS}
    assert balancer.pick(ENDPOINTS, REQUEST, random.Random(1), everyone) is not None
    assert balancer.pick([], REQUEST, random.Random(1)) is None


def test_random_uses_the_injected_rng() -> None:
    balancer = make_balancer(TrafficPolicy(load_balancer=LoadBalancerSettings(simple="RANDOM")))
    assert isinstance(balancer, RandomPick)
    first = [balancer.pick(ENDPOINTS, REQUEST, random.Random(5)).key for _ in range(5)]
    second = [balancer.pick(ENDPOINTS, REQUEST, random.Random(5)).key for _ in range(5)]
    assert first == second


def test_least_request_prefers_the_idle_host() -> None:
    balancer = make_balancer(
        TrafficPolicy(load_balancer=LoadBalancerSettings(simple="LEAST_REQUEST"))
    )
    assert isinstance(balancer, LeastRequest)
    two = ENDPOINTS[:2]
    balancer.on_start(two[0].key)
    balancer.on_start(two[0].key)
    assert {balancer.pick(two, REQUEST, random.Random(1)).key for _ in range(10)} == {two[1].key}
    balancer.on_finish(two[0].key)
    balancer.on_finish(two[0].key)
    assert len({balancer.pick(two, REQUEST, random.Random(1)).key for _ in range(10)}) == 2


def test_consistent_hash_by_header_is_sticky_and_spreads_keys() -> None:
    balancer = ConsistentHash(ConsistentHashLB(http_header_name="x-user"))

    def pick(user: str) -> str:
        return balancer.pick(
            ENDPOINTS, RequestView("reviews", headers={"x-user": user}), random.Random(1)
        ).key

    assert len({pick("alice") for _ in range(20)}) == 1
    assert len({pick(f"user{i}") for i in range(200)}) == 3


def test_consistent_hash_by_cookie_and_source_ip() -> None:
    by_cookie = ConsistentHash(ConsistentHashLB(http_cookie=HTTPCookie(name="user")))
    request = RequestView("reviews", headers={"cookie": "a=1; user=bob"})
    assert len({by_cookie.pick(ENDPOINTS, request, random.Random(i)).key for i in range(10)}) == 1
    by_ip = ConsistentHash(ConsistentHashLB(use_source_ip=True))
    request = RequestView("reviews", source_address="10.0.0.7")
    assert len({by_ip.pick(ENDPOINTS, request, random.Random(i)).key for i in range(10)}) == 1


def test_cookie_with_ttl_is_generated_when_absent_and_then_sticks() -> None:
    policy = ConsistentHashLB(http_cookie=HTTPCookie(name="user", path="/", ttl=3600.0))
    balancer = ConsistentHash(policy)
    made = balancer.generated_cookie(REQUEST, "10.0.0.7:40000")
    assert made is not None
    request, set_cookie = made
    value = request.headers["cookie"].removeprefix("user=")
    assert set_cookie == f'user="{value}"; Max-Age=3600; Path=/; HttpOnly'
    # Same connection, same cookie (requests racing on one connection agree).
    assert balancer.generated_cookie(REQUEST, "10.0.0.7:40000")[1] == set_cookie
    assert balancer.generated_cookie(REQUEST, "10.0.0.7:40001")[1] != set_cookie
    first = balancer.pick(ENDPOINTS, request, random.Random(1)).key
    # The browser sends it back quoted, as it was set: the same endpoint, every time.
    returned = RequestView("reviews", headers={"cookie": f'a=1; user="{value}"'})
    assert {balancer.pick(ENDPOINTS, returned, random.Random(i)).key for i in range(10)} == {first}
    assert balancer.generated_cookie(returned, "10.0.0.7:40000") is None
    # Other cookies of the request are kept.
    with_other = RequestView("reviews", headers={"cookie": "session=abc"})
    assert (
        balancer.generated_cookie(with_other, "c:1")[0]
        .headers["cookie"]
        .startswith("session=abc; user=")
    )


def test_cookie_without_ttl_is_never_generated_and_ttl_zero_makes_a_session_cookie() -> None:
    no_ttl = ConsistentHash(ConsistentHashLB(http_cookie=HTTPCookie(name="user")))
    assert no_ttl.generated_cookie(REQUEST, "10.0.0.7:40000") is None
    session = ConsistentHash(ConsistentHashLB(http_cookie=HTTPCookie(name="user", ttl=0.0)))
    _, set_cookie = session.generated_cookie(REQUEST, "10.0.0.7:40000")
    assert "Max-Age" not in set_cookie and "Path" not in set_cookie
    assert set_cookie.endswith("; HttpOnly")
    header_hash = ConsistentHash(ConsistentHashLB(http_header_name="x-user"))
    assert header_hash.generated_cookie(REQUEST, "10.0.0.7:40000") is None
