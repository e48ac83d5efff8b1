"""What routing answers with: header operations in Istio's order, cluster labels."""

from __future__ import annotations

from mesh.config.model import TrafficPolicy
from mesh.routing.decision import NO_HEADER_OPS, Cluster, HeaderOps


def test_header_ops_set_then_add_then_remove() -> None:
    headers = {"x-a": "0", "x-b": "1", "x-gone": "2"}
    HeaderOps(set=(("x-a", "1"),), add=(("x-b", "2"), ("x-c", "3")), remove=("x-gone",)).apply(
        headers
    )
    assert headers == {"x-a": "1", "x-b": "1,2", "x-c": "3"}


def test_rule_operations_come_before_the_destination_s() -> None:
    rule = HeaderOps(set=(("x-a", "rule"),))
    destination = HeaderOps(set=(("x-a", "destination"),))
    headers: dict[str, str] = {}
    rule.then(destination).apply(headers)
    assert headers == {"x-a": "destination"}
    assert rule.then(NO_HEADER_OPS) is rule and NO_HEADER_OPS.then(rule) is rule
    assert not NO_HEADER_OPS


def test_a_cluster_label_is_host_slash_subset() -> None:
    policy = TrafficPolicy()
    assert Cluster("c", "reviews", "v2", 9080, (), policy).label == "reviews/v2"
    assert Cluster("c", "reviews", None, 9080, (), policy).label == "reviews"
