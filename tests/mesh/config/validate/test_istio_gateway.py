"""Gateway: every case of Istio's own validation table tests, read at istio/istio@86c9f01fd735fb01d8192f5bcaf0d424afb7f14c
(pkg/config/validation/validation_test.go, virtualservice_test.go, agent/validation_test.go),
gets Istio's verdict from the lab: valid, warning or error (fixtures: istio/gateway.yaml)."""

from __future__ import annotations

import pytest

from tests.mesh.config.validate.istio import ISTIO_COMMIT, agrees, lab_verdict, load_cases

CASES = load_cases("gateway")


def test_cases_are_from_the_stated_commit() -> None:
    assert ISTIO_COMMIT.startswith("86c9f01")
    assert len(CASES) > 50


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_verdict_equals_istio(case: dict) -> None:
    verdict, findings = lab_verdict("Gateway", case)
    assert agrees(case["istio"], verdict), f"Istio: {case['istio']}, lab: {verdict}: {findings}"
