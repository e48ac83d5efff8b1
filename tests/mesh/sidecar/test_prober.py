"""Readiness probing: the kubelet's thresholds, and one real httpGet."""

from __future__ import annotations

import asyncio

from mesh.sidecar.prober import ProbeSpec, ProbeState, probe_once
from mesh.sidecar.testing import Upstream, free_port, ok


def test_kubernetes_defaults():
    spec = ProbeSpec()
    assert (spec.initial_delay, spec.period, spec.timeout) == (0.0, 10.0, 1.0)
    assert (spec.failure_threshold, spec.success_threshold) == (3, 1)


def test_thresholds_flip_readiness():
    state = ProbeState(ProbeSpec(failure_threshold=2, success_threshold=2))
    assert not state.ready  # a container starts unready
    assert state.observe(True) is False and not state.ready
    assert state.observe(True) is True and state.ready
    assert state.observe(False) is False and state.ready  # one failure is tolerated
    assert state.observe(True) is False  # and a success resets the count
    state.observe(False)
    assert state.observe(False, "HTTP probe failed with statuscode: 500") is True
    assert not state.ready and "500" in (state.last_error or "")


def test_probe_once_statuses_and_refusal():
    def behaviour(req):  # type: ignore[no-untyped-def]
        return {"/ok": ok(b""), "/moved": ok(b"", 302), "/bad": ok(b"", 500)}.get(req.target)

    with Upstream(behaviour) as up:

        def run(path: str, port: int = up.port):  # type: ignore[no-untyped-def]
            return asyncio.run(probe_once(ProbeSpec(path=path, port=port, timeout=1)))

        assert run("/ok") == (True, None)
        assert run("/moved")[0] is True  # 200-399 is success
        assert run("/bad") == (False, "HTTP probe failed with statuscode: 500")
        assert run("/ok", free_port())[0] is False
