"""Selectors and proxies as security reads them."""

from __future__ import annotations

from mesh.config.model import WorkloadSelector
from mesh.security.workload import has_labels, has_proxy, selects
from mesh.topology import Pod


def test_match_labels() -> None:
    labels = {"app": "httpbin", "version": "v1"}
    assert selects(None, labels)
    assert selects(WorkloadSelector({}), labels)
    assert selects(WorkloadSelector({"app": "httpbin"}), labels)
    assert not selects(WorkloadSelector({"app": "httpbin", "version": "v2"}), labels)
    assert not has_labels(WorkloadSelector({})) and has_labels(WorkloadSelector({"app": "x"}))


def test_proxies() -> None:
    assert has_proxy(Pod("a")) and has_proxy(Pod("gw", proxy="gateway"))
    assert not has_proxy(Pod("legacy", proxy="none"))
