"""``new_request_id()``: the ``x-request-id`` a proxy makes for a request that has none."""

from __future__ import annotations

import itertools
import random


def _request_id_prefix(rng: random.Random) -> str:
    """The first 20 hex digits of a random UUID4 (version nibble 4, variant bits 10)."""
    h = f"{rng.getrandbits(80):020x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-"


_ID_PREFIX = _request_id_prefix(random.Random())  # seeded from os.urandom, per process
_id_counter = itertools.count(random.Random().getrandbits(40))


def new_request_id() -> str:
    """A UUID4-shaped ``x-request-id``, as Envoy generates when a request has none: 74
    random bits per process, then a 48-bit counter as the last group. Unique across the
    mesh's proxies and cheap (one format, no 128-bit random number per request)."""
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"
