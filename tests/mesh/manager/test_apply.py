"""The apply transaction from plain values: what it writes, what it refuses, what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mesh.config.loader import load_text
from mesh.manager.apply import (
    OK,
    REFUSED,
    apply_resources,
    delete_keys,
    expected_state,
    snapshot_has,
    wait_synced,
)
from mesh.meshdir import MeshDir
from mesh.snapshot import Snapshot
from tests.helpers import BOOKINFO_RULES, COURSE, ROUTE, doc, docs, load, vs


@pytest.fixture
def mesh(tmp_path: Path) -> MeshDir:
    return MeshDir(tmp_path / "mesh").create()


def test_apply_writes_each_resource_once_and_says_so_in_kubectl_s_words(mesh: MeshDir) -> None:
    loaded = load(vs(f"hosts: [reviews]\nhttp:\n- {ROUTE}"))
    outcome = apply_resources(mesh, loaded.resources, loaded.issues, COURSE)
    assert outcome.code == OK
    assert [line.text for line in outcome.lines if not line.err] == [
        "destinationrule.networking.istio.io/reviews created",
        "destinationrule.networking.istio.io/productpage created",
        "virtualservice.networking.istio.io/reviews created",
    ]
    assert sorted(p.name for p in mesh.config.glob("*.yaml")) == [
        "destinationrule-productpage.yaml",
        "destinationrule-reviews.yaml",
        "virtualservice-reviews.yaml",
    ]
    assert (mesh.config / ".applied").exists()
    again = apply_resources(mesh, loaded.resources, loaded.issues, COURSE)
    assert again.text.count(" unchanged\n") == 3


def test_a_refused_apply_writes_nothing_and_lists_every_finding(mesh: MeshDir) -> None:
    loaded = load(
        vs("hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v9}")
    )
    outcome = apply_resources(mesh, loaded.resources, loaded.issues, COURSE)
    assert outcome.code == REFUSED
    assert all(line.err for line in outcome.lines)
    assert 'subset "v9" is not defined' in outcome.text
    assert outcome.lines[-1].text.startswith("error: 1 error(s) in the resulting config")
    assert list(mesh.config.glob("*.yaml")) == []


def test_deleting_what_is_not_there_is_not_found(mesh: MeshDir) -> None:
    outcome = delete_keys(mesh, [("VirtualService", "default", "nope")], COURSE)
    assert outcome.code == REFUSED
    assert outcome.text == (
        'Error from server (NotFound): virtualservices.networking.istio.io "nope" not found\n'
    )


def test_a_snapshot_has_the_expected_resources_in_normal_form() -> None:
    loaded = load(docs(BOOKINFO_RULES))
    expected = expected_state(loaded.resources)
    published = Snapshot(1, tuple(v for v in expected.values() if v is not None), ())
    assert snapshot_has(published, expected)
    key = next(iter(expected))
    assert not snapshot_has(published, {key: None})
    assert not snapshot_has(Snapshot(2, (), ()), expected)


def test_waiting_without_a_manager_says_so(mesh: MeshDir) -> None:
    outcome = wait_synced(mesh, {}, 0.0, 0.05)
    assert outcome.code == 2
    assert outcome.text == "error: timed out after 0.05s: the manager is not running\n"


DANGLING = doc("VirtualService", "reviews", f"hosts: [reviews]\nhttp:\n- {ROUTE}")
# The course runs ratings v1 only: a v2 subset selects no pods (IST0173, a warning).
RATINGS_V2 = doc(
    "DestinationRule", "ratings", "host: ratings\nsubsets:\n- {name: v2, labels: {version: v2}}"
)


def test_findings_about_earlier_applies_are_one_note_not_repeated(mesh: MeshDir) -> None:
    rules = load_text(docs(BOOKINFO_RULES, RATINGS_V2), "rules.yaml")
    first = apply_resources(mesh, rules.resources, rules.issues, COURSE)
    assert first.code == OK and "Warning [IST0173]" in first.text
    vs_only = load_text(DANGLING, "vs.yaml")
    second = apply_resources(mesh, vs_only.resources, vs_only.issues, COURSE)
    assert second.code == OK
    assert "IST0173" not in second.text
    (note,) = [line for line in second.lines if line.text.startswith("note: the live config")]
    assert note.err and note is second.lines[-1]


def test_allow_dangling_writes_the_annotation_and_applies_with_a_warning(mesh: MeshDir) -> None:
    loaded = load_text(DANGLING, "vs.yaml")
    refused = apply_resources(mesh, loaded.resources, loaded.issues, COURSE)
    assert refused.code == REFUSED and "Error [IST0101]" in refused.text
    applied = apply_resources(mesh, loaded.resources, loaded.issues, COURSE, allow_dangling=True)
    assert applied.code == OK and "Warning [IST0101]" in applied.text
    written = yaml.safe_load((mesh.config / "virtualservice-reviews.yaml").read_text())
    assert written["metadata"]["annotations"] == {"meshlab.io/allow-dangling": "true"}
