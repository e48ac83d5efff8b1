"""The model's registry: every kind with its type, API group and versions, one import for all."""

from __future__ import annotations

from mesh.config import model
from mesh.config.model import GROUP_VERSIONS, SPEC_GROUPS, SPEC_TYPES


def test_every_kind_has_a_type_a_group_and_versions() -> None:
    assert set(SPEC_TYPES) == set(SPEC_GROUPS)
    assert set(SPEC_GROUPS.values()) == set(GROUP_VERSIONS)
    assert SPEC_GROUPS["PeerAuthentication"] == "security.istio.io"
    assert "v1alpha3" in GROUP_VERSIONS[SPEC_GROUPS["VirtualService"]]


def test_the_whole_model_is_importable_from_one_module() -> None:
    for name in model.__all__:
        assert getattr(model, name) is not None
    assert model.TrafficPolicy.__module__ == "mesh.config.traffic_policy"
    assert model.AuthorizationPolicy.__module__ == "mesh.config.security_policy"
