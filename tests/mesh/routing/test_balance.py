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
