"""A mirror copy's Host."""

from __future__ import annotations

from mesh.sidecar.mirror import shadow as _shadow


def test_shadow_host_keeps_port():
    assert _shadow("reviews:9080") == "reviews-shadow:9080"
    assert _shadow("reviews") == "reviews-shadow"
