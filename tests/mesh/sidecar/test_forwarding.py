"""Istio header operations on the header lists the proxy forwards."""

from __future__ import annotations

from mesh.routing import HeaderOps
from mesh.sidecar.forwarding import apply_ops


def test_header_operations_on_header_lists():
    pairs = [(b"a", b"1"), (b"b", b"2"), (b"b", b"3"), (b"set-cookie", b"x")]
    ops = HeaderOps(set=(("B", "9"),), add=(("a", "more"), ("new", "v")), remove=("set-cookie",))
    assert apply_ops(pairs, ops) == [(b"a", b"1,more"), (b"b", b"9"), (b"new", b"v")]
