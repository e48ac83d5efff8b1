"""Delegation from plain values: which resources come out of ``merge_delegates``, what a
merged rule inherits from its root, and Istio's match-conflict rule (the routing side, where
requests go, is tests/mesh/routing/test_delegation.py)."""

from __future__ import annotations

from mesh.config.delegation import merge_delegates, merge_matches, merge_route
from mesh.config.model import (
    Destination,
    HTTPMatchRequest,
    HTTPMirrorPolicy,
    HTTPRetry,
    HTTPRoute,
    HTTPRouteDestination,
    StringMatch,
    VirtualService,
)
from tests.helpers import BOOKINFO_RULES, DELEGATING_ROOT, REVIEWS_DELEGATE, doc, docs, load

PLAIN = doc(
    "VirtualService",
    "ratings",
    """
    hosts: [ratings]
    http:
    - route: [{destination: {host: ratings}}]
    """,
)


def prefix(path: str) -> HTTPMatchRequest:
    return HTTPMatchRequest(uri=StringMatch("prefix", path))


def exact(path: str) -> HTTPMatchRequest:
    return HTTPMatchRequest(uri=StringMatch("exact", path))


def to(subset: str) -> tuple[HTTPRouteDestination, ...]:
    return (HTTPRouteDestination(destination=Destination(host="reviews", subset=subset)),)


def test_delegates_are_consumed_and_other_resources_pass_unchanged() -> None:
    resources = load(docs(DELEGATING_ROOT, REVIEWS_DELEGATE, PLAIN, BOOKINFO_RULES)).resources
    merged = merge_delegates(resources)
    assert [r.name for r in merged] == ["bookinfo", "ratings", "reviews", "productpage"]
    untouched = [r for r in resources if r.name in ("ratings", "reviews", "productpage")]
    assert [r for r in merged if r.name != "bookinfo"] == untouched  # the same objects


def test_a_delegating_rule_becomes_the_delegates_rules_in_its_place() -> None:
    (root,) = merge_delegates(load(docs(DELEGATING_ROOT, REVIEWS_DELEGATE)).resources)
    spec: VirtualService = root.spec
    jason, rest, fallback = spec.http  # the delegate's /ratings rule is outside /reviews
    jason_match = HTTPMatchRequest(
        uri=StringMatch("prefix", "/reviews/0"), headers={"end-user": StringMatch("exact", "jason")}
    )
    assert jason.match == (jason_match,)
    assert rest.match == (prefix("/reviews"),)  # the delegate's catch-all takes the root's
    assert (jason.route, rest.route, fallback.route) == (to("v2"), to("v3"), to("v1"))
    assert jason.timeout == rest.timeout == 3.0  # the root's, which the delegate leaves unset
    assert jason.delegate is None and rest.delegate is None


def test_a_delegate_that_does_not_exist_drops_its_rule() -> None:
    (root,) = merge_delegates(load(DELEGATING_ROOT).resources)
    assert [r.route for r in root.spec.http] == [to("v1")]


def test_a_merged_rule_keeps_what_the_delegate_sets_and_joins_the_names() -> None:
    root = HTTPRoute(name="root", match=(prefix("/a"),), timeout=3.0, retries=HTTPRetry(2))
    merged = merge_route(root, HTTPRoute(name="leaf", route=to("v2"), timeout=1.0))
    assert merged is not None
    assert (merged.name, merged.timeout, merged.retries) == ("root-leaf", 1.0, HTTPRetry(2))


def test_a_merged_rule_keeps_its_own_mirrors_else_takes_the_roots() -> None:
    mirror = (HTTPMirrorPolicy(destination=Destination(host="reviews", subset="v9")),)
    root = HTTPRoute(match=(prefix("/a"),), mirrors=mirror)
    assert merge_route(root, HTTPRoute(route=to("v2"))) == HTTPRoute(
        match=(prefix("/a"),), route=to("v2"), mirrors=mirror
    )
    own = (HTTPMirrorPolicy(destination=Destination(host="reviews", subset="v3")),)
    merged = merge_route(root, HTTPRoute(route=to("v2"), mirrors=own))
    assert merged is not None and merged.mirrors == own


def test_a_delegate_rule_outside_its_root_is_none() -> None:
    assert merge_route(HTTPRoute(match=(prefix("/a"),)), HTTPRoute(match=(prefix("/b"),))) is None


def test_matches_without_a_side_take_the_other() -> None:
    assert merge_matches((), (prefix("/b"),)) == (prefix("/b"),)
    assert merge_matches((prefix("/a"),), ()) == (prefix("/a"),)


def test_each_delegate_match_combines_with_every_root_match_it_fits() -> None:
    merged = merge_matches((prefix("/a"), prefix("/ab")), (prefix("/abc"), exact("/a1")))
    assert merged == (prefix("/abc"), prefix("/abc"), exact("/a1"))
    # One delegate match that fits no root match: the whole rule is out (Istio's hasConflict).
    assert merge_matches((prefix("/a"),), (prefix("/a/x"), prefix("/b"))) is None


def test_istio_s_string_conflicts() -> None:
    """stringMatchConflict: a regex on either side conflicts; a root's exact match admits
    only the same exact match; a root's prefix admits prefixes and exact paths under it; a
    presence match (``{}``) in the root admits no valued match under it."""

    def fits(root: StringMatch, leaf: StringMatch) -> bool:
        merged = merge_matches(
            (HTTPMatchRequest(headers={"x": root}),), (HTTPMatchRequest(headers={"x": leaf}),)
        )
        return merged is not None

    assert fits(StringMatch("exact", "1"), StringMatch("exact", "1"))
    assert not fits(StringMatch("exact", "1"), StringMatch("exact", "2"))
    assert not fits(StringMatch("exact", "1"), StringMatch("prefix", "1"))
    assert fits(StringMatch("prefix", "a"), StringMatch("exact", "ab"))
    assert not fits(StringMatch("prefix", "a"), StringMatch("prefix", "b"))
    assert not fits(StringMatch("regex", "a.*"), StringMatch("regex", "a.*"))
    assert not fits(StringMatch("prefix", "a"), StringMatch("regex", "a.*"))
    assert not fits(StringMatch(), StringMatch("exact", "1"))
    # A header the root does not name is no conflict.
    assert merge_matches((prefix("/a"),), (HTTPMatchRequest(headers={"x": StringMatch()}),))
