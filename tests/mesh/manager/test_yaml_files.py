"""Reading Istio YAML from files and folders."""

from __future__ import annotations

from mesh.manager.yaml_files import load_paths
from tests.helpers import doc


def test_later_files_replace_earlier_definitions(tmp_path) -> None:
    base = tmp_path / "a.yaml"
    base.write_text(
        doc(
            "VirtualService",
            "reviews",
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}",
        )
    )
    change = tmp_path / "b.yaml"
    change.write_text(
        doc(
            "VirtualService",
            "reviews",
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v2}",
        )
    )
    result = load_paths([base, change])
    (resource,) = result.resources
    assert resource.spec.http[0].route[0].destination.subset == "v2"
    assert any(i.code == "MSH0005" for i in result.issues)
