"""DestinationRule: subsets and traffic policies."""

from __future__ import annotations

import pytest

from tests.helpers import assert_finding, doc, findings

CASES = [
    # (id, yaml, expected "Severity CODE path" prefix, message fragment)
    (
        "duplicate-subset",
        doc(
            "DestinationRule",
            "reviews",
            "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v1, labels: {version: v2}}",
        ),
        "Error IST0106 subsets[1].name",
        "duplicate subset name",
    ),
    (
        "consecutive-errors-deprecated",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  outlierDetection: {consecutiveErrors: 2}",
        ),
        "Warning IST0133 trafficPolicy.outlierDetection.consecutiveErrors",
        "deprecated",
    ),
    (
        "max-ejection-over-100",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  outlierDetection: {maxEjectionPercent: 120}",
        ),
        "Error IST0106 trafficPolicy.outlierDetection.maxEjectionPercent",
        "not in range 0..100",
    ),
    (
        "empty-traffic-policy",
        doc("DestinationRule", "details", "host: details\ntrafficPolicy: {}"),
        "Error IST0106 trafficPolicy",
        "at least one field",
    ),
    (
        "tls-simple-not-originated",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  tls: {mode: SIMPLE}",
        ),
        "Info MSH0008 trafficPolicy.tls",
        "503 UF",
    ),
    # Istio's ValidateTLS (pkg/config/validation/agent).
    (
        "tls-mutual-without-certificate",
        doc("DestinationRule", "details", "host: details\ntrafficPolicy:\n  tls: {mode: MUTUAL}"),
        "Error IST0106 trafficPolicy.tls.clientCertificate",
        "client certificate required for mutual tls",
    ),
    (
        "tls-credential-name-with-files",
        doc(
            "DestinationRule",
            "details",
            "host: details\ntrafficPolicy:\n  portLevelSettings:\n  - port: {number: 9080}\n"
            "    tls: {mode: SIMPLE, credentialName: c, caCertificates: /etc/ca.pem}",
        ),
        "Error IST0106 trafficPolicy.portLevelSettings[0].tls",
        "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
    ),
    (
        "tls-insecure-skip-verify-with-san",
        doc(
            "DestinationRule",
            "details",
            "host: details\nsubsets:\n- name: v1\n  labels: {version: v1}\n  trafficPolicy:\n"
            "    tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a]}",
        ),
        "Error IST0106 subsets[0].trafficPolicy.tls",
        "when InsecureSkipVerify is set true",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_finding(text: str, expected: str | None, fragment: str | None) -> None:
    assert_finding(text, expected, fragment)


def test_mesh_tls_modes_apply_without_a_lab_note() -> None:
    for mode in ("ISTIO_MUTUAL", "DISABLE"):
        text = doc(
            "DestinationRule", "details", f"host: details\ntrafficPolicy:\n  tls: {{mode: {mode}}}"
        )
        assert not [f for f in findings(text) if "MSH0008" in f], mode
