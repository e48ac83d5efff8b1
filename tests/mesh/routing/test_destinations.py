"""Destinations → clusters: which DestinationRule applies, subset endpoints, names, ports."""

from __future__ import annotations

import pytest

from mesh.config.issues import ConfigError
from mesh.config.model import (
    Destination,
    DestinationRule,
    LoadBalancerSettings,
    PortSelector,
    Subset,
    TrafficPolicy,
)
from mesh.config.resource import Resource
from mesh.routing.destinations import ClusterBuilder, labels_match
from tests.helpers import pods

RANDOM = TrafficPolicy(load_balancer=LoadBalancerSettings(simple="RANDOM"))


def rule(spec: DestinationRule, namespace: str = "default") -> Resource:
    return Resource("DestinationRule", "networking.istio.io/v1", "r", namespace, {}, spec)


def test_an_exact_rule_wins_over_a_wildcard_and_subsets_select_by_label() -> None:
    exact = DestinationRule(host="reviews", subsets=(Subset("v2", {"version": "v2"}),))
    wildcard = DestinationRule(host="*.local", traffic_policy=RANDOM)
    builder = ClusterBuilder(
        [rule(wildcard), rule(exact)], pods("reviews:v1", "reviews:v2", "a.local:v1")
    )
    cluster = builder.cluster(Destination("reviews.default.svc.cluster.local", "v2"))
    assert cluster.name == "outbound|9080|v2|reviews.default.svc.cluster.local"
    assert [e.labels["version"] for e in cluster.endpoints] == ["v2"]
    assert builder.cluster(Destination("reviews", "v2")) is cluster  # cached by name
    assert builder.cluster(Destination("a.local")).policy == RANDOM


def test_an_undefined_subset_is_a_cluster_without_endpoints() -> None:
    builder = ClusterBuilder([], pods("reviews:v1"))
    cluster = builder.cluster(Destination("reviews", "v9", PortSelector(9081)))
    assert (cluster.defined, cluster.endpoints, cluster.port) == (False, (), 9081)


def test_a_destination_without_host_is_refused() -> None:
    with pytest.raises(ConfigError):
        ClusterBuilder([], []).cluster(Destination(""))


def test_the_client_s_namespace_rule_wins_then_the_service_s_then_the_root_s() -> None:
    def subset_rule(version: str) -> DestinationRule:
        return DestinationRule(
            host="reviews.default.svc.cluster.local", subsets=(Subset("s", {"version": version}),)
        )

    rules = [rule(subset_rule("v1"), "istio-system"), rule(subset_rule("v2"), "default")]
    endpoints = pods("reviews:v1", "reviews:v2")
    for client, version in (("default", "v2"), ("foo", "v2")):
        cluster = ClusterBuilder(rules, endpoints, (), client).cluster(
            Destination("reviews.default.svc.cluster.local", "s")
        )
        assert [e.labels["version"] for e in cluster.endpoints] == [version], client
    only_root = ClusterBuilder(rules[:1], endpoints, (), "foo")
    cluster = only_root.cluster(Destination("reviews.default.svc.cluster.local", "s"))
    assert [e.labels["version"] for e in cluster.endpoints] == ["v1"]


def test_labels_match_is_a_subset_test() -> None:
    assert labels_match({"app": "a"}, {"app": "a", "version": "v1"})
    assert not labels_match({"app": "a", "version": "v2"}, {"app": "a", "version": "v1"})
    assert labels_match({}, {})
