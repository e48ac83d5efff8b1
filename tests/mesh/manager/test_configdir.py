import pytest
import yaml

from mesh.manager.configdir import (
    ResourceNameError,
    canonical_name,
    normalize_kind,
    parse_file,
    plan_apply,
    plan_delete,
)
from tests.helpers import HAND_EDITED as HAND


def vs(name, subset="v1"):
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}],
        },
    }


def text(*raws):
    return "---\n".join(yaml.safe_dump(r, sort_keys=False) for r in raws)


def test_apply_creates_in_canonical_file():
    plan = plan_apply([], [vs("reviews")])
    assert plan.outcomes == [(("VirtualService", "default", "reviews"), "created")]
    assert list(plan.writes) == ["virtualservice-reviews.yaml"]
    assert yaml.safe_load(plan.writes["virtualservice-reviews.yaml"]) == vs("reviews")


def test_apply_same_content_is_unchanged_and_writes_nothing():
    files = [parse_file("virtualservice-reviews.yaml", text(vs("reviews")))]
    plan = plan_apply(files, [vs("reviews")])
    assert plan.outcomes[0][1] == "unchanged" and plan.writes == {}


def test_apply_replaces_a_resource_inside_a_hand_edited_file_keeping_the_rest():
    files = [parse_file("mine.yaml", HAND)]
    plan = plan_apply(files, [vs("reviews", "v2")])
    assert plan.outcomes[0][1] == "configured"
    rest = plan.writes["mine.yaml"]
    assert "a comment that must survive" in rest and "VirtualService" not in rest
    assert yaml.safe_load(plan.writes["virtualservice-reviews.yaml"]) == vs("reviews", "v2")
    # Validation sees the kept DestinationRule but not the superseded VirtualService.
    assert (
        "DestinationRule" in plan.kept["mine.yaml"]
        and "kind: VirtualService" not in plan.kept["mine.yaml"]
    )


def test_a_file_left_empty_is_removed():
    files = [parse_file("only.yaml", text(vs("reviews")))]
    plan = plan_apply(files, [vs("reviews", "v3")])
    assert plan.writes["only.yaml"] is None


def test_same_resource_in_two_files_is_consolidated():
    files = [parse_file("a.yaml", text(vs("reviews"))), parse_file("b.yaml", text(vs("reviews")))]
    plan = plan_apply(files, [vs("reviews")])
    assert plan.outcomes[0][1] == "configured"
    assert plan.writes["a.yaml"] is None and plan.writes["b.yaml"] is None
    assert "virtualservice-reviews.yaml" in plan.writes


def test_prune_leaves_exactly_the_input():
    files = [
        parse_file("mine.yaml", HAND),
        parse_file("virtualservice-details.yaml", text(vs("details"))),
    ]
    plan = plan_apply(files, [vs("details")], prune=True)
    actions = dict(plan.outcomes)
    assert actions[("VirtualService", "default", "details")] == "unchanged"
    assert actions[("VirtualService", "default", "reviews")] == "pruned"
    assert actions[("DestinationRule", "default", "reviews")] == "pruned"
    assert plan.writes == {"mine.yaml": None}
    assert plan.kept == {}


def test_delete_reports_missing_and_removes_from_any_file():
    files = [parse_file("mine.yaml", HAND)]
    plan = plan_delete(
        files, [("DestinationRule", "default", "reviews"), ("Gateway", "default", "x")]
    )
    assert plan.outcomes == [
        (("DestinationRule", "default", "reviews"), "deleted"),
        (("Gateway", "default", "x"), "not found"),
    ]
    assert "DestinationRule" not in plan.writes["mine.yaml"]
    assert "VirtualService" in plan.writes["mine.yaml"]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/b", "UPPER", "-x", "x-", "", "a" * 254, "with space", "a_b", ".hidden"],
)
def test_names_that_are_not_dns1123_never_become_file_names(name):
    with pytest.raises(ResourceNameError):
        canonical_name(("VirtualService", "default", name))
    with pytest.raises(ResourceNameError):
        plan_apply([], [vs(name)])


def test_canonical_names():
    assert (
        canonical_name(("DestinationRule", "default", "reviews.v1"))
        == "destinationrule-reviews.v1.yaml"
    )
    assert canonical_name(("Gateway", "lab", "gw")) == "gateway-lab__gw.yaml"
    with pytest.raises(ResourceNameError):
        canonical_name(("Secret", "default", "x"))


@pytest.mark.parametrize(
    ("alias", "kind"),
    [
        ("vs", "VirtualService"),
        ("VirtualServices", "VirtualService"),
        ("dr", "DestinationRule"),
        ("gw", "Gateway"),
        ("gateway.networking.istio.io", "Gateway"),
        ("pods", None),
    ],
)
def test_kind_aliases(alias, kind):
    assert normalize_kind(alias) == kind


def test_a_yaml_bomb_is_an_opaque_document_not_a_hang():
    bomb = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n"
    bomb += "  a0: &a0 [x, x]\n" + "".join(
        f"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 40)
    )
    parsed = parse_file("bomb.yaml", bomb)
    assert parsed.docs[0].key is None and parsed.docs[0].raw is None


def test_the_security_kinds_are_stored_and_named_as_kubectl_names_them() -> None:
    from mesh.manager.configdir import canonical_name, kind_ref, normalize_kind

    assert normalize_kind("pa") == "PeerAuthentication"
    assert normalize_kind("authorizationpolicies.security.istio.io") == "AuthorizationPolicy"
    assert kind_ref("PeerAuthentication") == "peerauthentication.security.istio.io"
    assert kind_ref("VirtualService") == "virtualservice.networking.istio.io"
    key = ("PeerAuthentication", "istio-system", "default")
    assert canonical_name(key) == "peerauthentication-istio-system__default.yaml"
