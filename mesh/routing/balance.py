"""Endpoint load balancing: ``make_balancer(policy)`` → a ``Balancer`` with ``pick``.

ROUND_ROBIN is the lab's default (Lab decision 4; Istio's default is LEAST_REQUEST, whose
"power of two choices" is also here), RANDOM, and ``consistentHash`` on a header, a cookie,
the source IP or a query parameter (a ring of virtual nodes per endpoint, so one key keeps
its endpoint while the endpoint set is stable; affinity is soft, as in Envoy). Balancers keep
small runtime state (a cursor, active-request counts); one lives per cluster per proxy.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Collection, Sequence
from dataclasses import replace
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

from mesh.config.model import ConsistentHashLB, HTTPCookie, TrafficPolicy
from mesh.routing.decision import RequestView
from mesh.snapshot import Endpoint

DEFAULT_RING_SIZE = 1024


class Balancer:
    """Picks one endpoint among the healthy ones; ``exclude`` holds keys already tried."""

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        request: RequestView,
        rng: random.Random,
        exclude: Collection[str] = (),
    ) -> Endpoint | None:
        raise NotImplementedError

    def on_start(self, key: str) -> None:
        """A request to ``key`` started (LEAST_REQUEST counts these)."""

    def on_finish(self, key: str) -> None:
        """A request to ``key`` finished."""


def _candidates(endpoints: Sequence[Endpoint], exclude: Collection[str]) -> Sequence[Endpoint]:
    if not exclude:
        return endpoints
    remaining = [e for e in endpoints if e.key not in exclude]
    # Retrying the only host is better than failing (Envoy's previous_hosts predicate gives up
    # after a few rejections and accepts a previous host).
    return remaining or endpoints


class RoundRobin(Balancer):
    def __init__(self) -> None:
        self.cursor = 0

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        request: RequestView,
        rng: random.Random,
        exclude: Collection[str] = (),
    ) -> Endpoint | None:
        pool = _candidates(endpoints, exclude)
        if not pool:
            return None
        self.cursor += 1
        return pool[self.cursor % len(pool)]


class RandomPick(Balancer):
    def pick(
        self,
        endpoints: Sequence[Endpoint],
        request: RequestView,
        rng: random.Random,
        exclude: Collection[str] = (),
    ) -> Endpoint | None:
        pool = _candidates(endpoints, exclude)
        return pool[rng.randrange(len(pool))] if pool else None


class LeastRequest(Balancer):
    """Envoy's LEAST_REQUEST: the less busy of two random choices (all, when there are few)."""

    def __init__(self) -> None:
        self.active: dict[str, int] = {}
        self.cursor = 0

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        request: RequestView,
        rng: random.Random,
        exclude: Collection[str] = (),
    ) -> Endpoint | None:
        pool = _candidates(endpoints, exclude)
        if not pool:
            return None
        if len(pool) <= 2:
            self.cursor += 1
            start = self.cursor % len(pool)
            ordered = list(pool[start:]) + list(pool[:start])
            return min(ordered, key=lambda e: self.active.get(e.key, 0))
        first, second = rng.sample(range(len(pool)), 2)
        a, b = pool[first], pool[second]
        return a if self.active.get(a.key, 0) <= self.active.get(b.key, 0) else b

    def on_start(self, key: str) -> None:
        self.active[key] = self.active.get(key, 0) + 1

    def on_finish(self, key: str) -> None:
        count = self.active.get(key, 0) - 1
        if count > 0:
            self.active[key] = count
        else:
            self.active.pop(key, None)


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class ConsistentHash(Balancer):
    """Ring hash over the healthy endpoints, keyed by one request attribute."""

    def __init__(self, config: ConsistentHashLB) -> None:
        self.config = config
        ring_size = (
            (config.ring_hash.minimum_ring_size if config.ring_hash else None)
            or config.minimum_ring_size
            or DEFAULT_RING_SIZE
        )
        self.ring_size = max(1, min(ring_size, 1 << 16))
        self._ring_for: tuple[str, ...] = ()
        self._ring: list[tuple[int, int]] = []
        self._points: list[int] = []
        self._fallback = RoundRobin()

    def hash_key(self, request: RequestView) -> str | None:
        config = self.config
        if config.http_header_name:
            return request.headers.get(config.http_header_name.lower())
        if config.http_cookie is not None:
            raw = request.headers.get("cookie")
            if not raw:
                return None
            try:
                cookies = SimpleCookie(raw)
            except CookieError:
                return None
            morsel = cookies.get(config.http_cookie.name)
            return morsel.value if morsel is not None else None
        if config.use_source_ip:
            return request.source_address or None
        if config.http_query_parameter_name:
            query = dict(parse_qsl(request.path.partition("?")[2], keep_blank_values=True))
            return query.get(config.http_query_parameter_name)
        return None

    def generated_cookie(
        self, request: RequestView, connection: str
    ) -> tuple[RequestView, str] | None:
        """Envoy's cookie generation for ``httpCookie`` with a ``ttl``: when the request
        lacks the cookie, one is made for it, and the request is hashed as if it had sent
        it. Returns the request with the cookie added and the ``set-cookie`` value to send
        back, or None (no cookie policy with a ttl, or the cookie is there already).

        The value is a hash of the client's connection (``ip:port``), as Envoy's, so the
        requests racing on one connection get the same cookie.
        """
        cookie = self.config.http_cookie
        if cookie is None or cookie.ttl is None or self.hash_key(request) is not None:
            return None
        value = f"{_hash(connection):016x}"
        headers = dict(request.headers)
        prior = headers.get("cookie")
        pair = f"{cookie.name}={value}"
        headers["cookie"] = f"{prior}; {pair}" if prior else pair
        return replace(request, headers=headers), set_cookie(cookie, value)

    def _build(self, endpoints: Sequence[Endpoint]) -> None:
        keys = tuple(e.key for e in endpoints)
        if keys == self._ring_for:
            return
        per_host = max(1, self.ring_size // max(1, len(endpoints)))
        ring = sorted(
            (_hash(f"{key}#{replica}"), index)
            for index, key in enumerate(keys)
            for replica in range(per_host)
        )
        self._ring_for = keys
        self._ring = ring
        self._points = [point for point, _ in ring]

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        request: RequestView,
        rng: random.Random,
        exclude: Collection[str] = (),
    ) -> Endpoint | None:
        pool = _candidates(endpoints, exclude)
        if not pool:
            return None
        key = self.hash_key(request)
        if key is None:
            return self._fallback.pick(pool, request, rng)
        self._build(pool)
        slot = bisect.bisect(self._points, _hash(key)) % len(self._ring)
        return pool[self._ring[slot][1]]


def set_cookie(cookie: HTTPCookie, value: str) -> str:
    """A ``set-cookie`` value as Envoy writes a generated hash cookie: quoted value,
    ``Max-Age`` unless the ttl is 0 (a session cookie), ``Path`` when given, ``HttpOnly``."""
    text = f'{cookie.name}="{value}"'
    seconds = int(cookie.ttl or 0)  # whole seconds, as Envoy counts them
    if seconds:
        text += f"; Max-Age={seconds}"
    if cookie.path:
        text += f"; Path={cookie.path}"
    return text + "; HttpOnly"


def make_balancer(policy: TrafficPolicy) -> Balancer:
    """The balancer a cluster's effective traffic policy asks for."""
    settings = policy.load_balancer
    if settings is not None and settings.consistent_hash is not None:
        return ConsistentHash(settings.consistent_hash)
    simple = settings.simple if settings is not None else None
    if simple == "RANDOM":
        return RandomPick()
    if simple in ("LEAST_REQUEST", "LEAST_CONN"):
        return LeastRequest()
    return RoundRobin()
