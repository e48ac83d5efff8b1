"""A cluster's load accounting (connectionPool limits are per client proxy per cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mesh.sidecar.clusters import Load


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_release_hands_the_slot_to_the_oldest_waiter(loop):
    load = Load()
    load.inflight = 1
    first, second = loop.create_future(), loop.create_future()
    first.cancel()  # a waiter that timed out is skipped
    load.waiters.extend([first, second])
    load.release()
    assert second.result() is True and load.inflight == 1
    load.release()
    assert load.inflight == 0
