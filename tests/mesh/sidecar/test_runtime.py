"""Table swaps: per-cluster state rebuilt, outlier state and load kept."""

from __future__ import annotations

from mesh.routing import ProxyIdentity, compile_snapshot
from tests.helpers import sidecar_runtime, svc_dr, svc_endpoint, svc_snapshot, svc_vs


def test_table_swap_keeps_outlier_state_and_load(loop):
    od = {"outlierDetection": {"consecutive5xxErrors": 1, "baseEjectionTime": "30s"}}
    rt = sidecar_runtime(loop, [svc_dr(**od)], [svc_endpoint("a", 1), svc_endpoint("b", 2)])
    name = next(n for n, s in rt.states.items() if s.cluster.label == "svc" and s.cluster.endpoints)
    state = rt.states[name]
    state.record("127.0.0.1:1", 503, 0.0)
    assert [e.key for e in state.healthy] == ["127.0.0.1:2"]
    table2 = compile_snapshot(svc_snapshot([svc_dr(**od), svc_vs([{"route": [{"destination": {"host": "svc"}}]}])],
                                       [svc_endpoint("a", 1), svc_endpoint("b", 2)], 2), ProxyIdentity("p", {}))  # fmt: skip
    rt.install(table2)
    again = rt.states[name]
    assert again is not state and again.load is state.load
    assert [e.key for e in again.healthy] == ["127.0.0.1:2"]
    # A changed outlier policy starts fresh.
    od2 = {"outlierDetection": {"consecutive5xxErrors": 3}}
    rt.install(compile_snapshot(svc_snapshot([svc_dr(**od2)], [svc_endpoint("a", 1), svc_endpoint("b", 2)], 3),
                                ProxyIdentity("p", {})))  # fmt: skip
    assert len(rt.states[name].healthy) == 2
