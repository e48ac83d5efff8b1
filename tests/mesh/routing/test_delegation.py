"""Delegate VirtualServices, merged as Istio merges them: the root's delegating rule becomes
the delegate's rules, each with the root's match and the root's settings it leaves unset."""

from __future__ import annotations

from mesh.config.delegation import merge_matches
from mesh.config.loader import normal_documents
from mesh.config.model import HTTPMatchRequest, StringMatch
from mesh.routing import Forward, LocalReply, ProxyIdentity, compile_snapshot
from mesh.snapshot import Snapshot
from tests.helpers import (
    BOOKINFO_PODS,
    BOOKINFO_RULES,
    DELEGATING_ROOT,
    REVIEWS_DELEGATE,
    docs,
    load,
    route,
    table,
)

ROOT, DELEGATE = DELEGATING_ROOT, REVIEWS_DELEGATE
SUBSETS = BOOKINFO_RULES  # reviews v1, v2, v3


def test_the_delegate_rules_take_the_roots_place() -> None:
    rt = table(docs(ROOT, DELEGATE, SUBSETS))
    jason = route(rt, path="/reviews/0", headers={"end-user": "jason"})
    anyone = route(rt, path="/reviews/1")
    elsewhere = route(rt, path="/details")
    assert isinstance(jason, Forward) and jason.cluster.subset == "v2"
    assert jason.timeout == 3.0  # inherited from the root rule
    assert isinstance(anyone, Forward) and anyone.cluster.subset == "v3"
    assert isinstance(elsewhere, Forward) and elsewhere.cluster.subset == "v1"


def test_a_delegate_rule_outside_its_root_is_ignored() -> None:
    """/ratings is not within the root's /reviews prefix: Istio drops that rule."""
    rt = table(docs(ROOT, DELEGATE, SUBSETS))
    decision = route(rt, path="/ratings")
    assert isinstance(decision, Forward) and decision.cluster.subset == "v1"


def test_a_missing_delegate_drops_the_rule() -> None:
    rt = table(docs(ROOT, SUBSETS))
    decision = route(rt, path="/reviews/0")
    assert isinstance(decision, Forward) and decision.cluster.subset == "v1"
    assert not isinstance(decision, LocalReply)


def test_match_conflicts_follow_istio() -> None:
    root = (HTTPMatchRequest(uri=StringMatch("exact", "/a")),)
    assert merge_matches(root, (HTTPMatchRequest(uri=StringMatch("prefix", "/a")),)) is None
    assert merge_matches(root, (HTTPMatchRequest(uri=StringMatch("exact", "/a")),)) is not None
    regex_root = (HTTPMatchRequest(uri=StringMatch("regex", "/a.*")),)
    assert merge_matches(regex_root, (HTTPMatchRequest(uri=StringMatch("exact", "/ab")),)) is None
    merged = merge_matches(
        (HTTPMatchRequest(headers={"x": StringMatch("exact", "1")}),),
        (HTTPMatchRequest(uri=StringMatch("prefix", "/b")),),
    )
    assert merged == (
        HTTPMatchRequest(uri=StringMatch("prefix", "/b"), headers={"x": StringMatch("exact", "1")}),
    )


def test_a_root_and_its_delegate_published_in_normal_form_merge_in_the_sidecar() -> None:
    documents = normal_documents(r.raw for r in load(docs(ROOT, DELEGATE, SUBSETS)).resources)
    snapshot = Snapshot(1, documents, tuple(BOOKINFO_PODS))
    table = compile_snapshot(snapshot, ProxyIdentity("p", {"app": "productpage"}))
    jason = route(table, path="/reviews/0", headers={"end-user": "jason"})
    assert isinstance(jason, Forward) and jason.cluster.subset == "v2"
    assert jason.timeout == 3.0
