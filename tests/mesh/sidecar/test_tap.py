"""The sidecar's wire tap: a bounded ring of first bytes, read through ``since``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesh.sidecar import tap


@pytest.fixture(autouse=True)
def empty() -> Iterator[None]:
    tap.clear()
    yield
    tap.clear()


def test_record_and_snapshot_since() -> None:
    tap.record(b"\x16\x03\x01rest", ("127.0.0.1", 5555), port=9080)
    tap.record(b"GET / HTTP/1.1\r\n", ("10.0.0.2", 1234))
    snap = tap.snapshot()
    assert snap["recorded"] == 2
    first, second = snap["connections"]
    assert (first["seq"], first["peer"], first["port"], first["hex"]) == (
        1, "127.0.0.1:5555", 9080, b"\x16\x03\x01rest".hex(),
    )  # fmt: skip
    assert second["port"] is None
    assert [c["seq"] for c in tap.snapshot(1)["connections"]] == [2]


def test_the_ring_and_the_bytes_are_bounded() -> None:
    for _ in range(tap.TAP_CONNECTIONS + 10):
        tap.record(b"x" * (tap.TAP_BYTES + 100))
    snap = tap.snapshot()
    assert snap["recorded"] == tap.TAP_CONNECTIONS + 10
    assert len(snap["connections"]) == tap.TAP_CONNECTIONS
    assert len(bytes.fromhex(snap["connections"][0]["hex"])) == tap.TAP_BYTES


@pytest.mark.parametrize(
    ("url", "since"),
    [(b"/tap", 0), (b"/tap?since=7", 7), (b"/tap?x=1&since=3", 3), (b"/tap?since=-1", 0)],
)
def test_since_of(url: bytes, since: int) -> None:
    assert tap.since_of(url) == since
