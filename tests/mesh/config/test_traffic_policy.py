"""DestinationRule's traffic policy: how subset and port-level settings layer."""

from __future__ import annotations

from mesh.config.fields import PortSelector
from mesh.config.traffic_policy import (
    LoadBalancerSettings,
    OutlierDetection,
    PortTrafficPolicy,
    TrafficPolicy,
)


def test_a_subset_policy_overrides_field_by_field() -> None:
    rule = TrafficPolicy(
        load_balancer=LoadBalancerSettings(simple="RANDOM"),
        outlier_detection=OutlierDetection(consecutive_5xx_errors=3),
    )
    subset = TrafficPolicy(load_balancer=LoadBalancerSettings(simple="LEAST_REQUEST"))
    merged = rule.overridden_by(subset)
    assert merged.load_balancer == subset.load_balancer
    assert merged.outlier_detection == rule.outlier_detection
    assert rule.overridden_by(None) is rule


def test_port_level_settings_apply_to_their_port_only() -> None:
    policy = TrafficPolicy(
        load_balancer=LoadBalancerSettings(simple="RANDOM"),
        port_level_settings=(
            PortTrafficPolicy(
                port=PortSelector(9080), load_balancer=LoadBalancerSettings(simple="ROUND_ROBIN")
            ),
        ),
    )
    assert policy.for_port(9080).load_balancer == LoadBalancerSettings(simple="ROUND_ROBIN")
    assert policy.for_port(8000) is policy
