"""A loaded resource: findings point at the line of the field, or of its nearest parent."""

from __future__ import annotations

from tests.helpers import doc, load


def test_a_finding_gets_the_line_of_the_field_or_its_nearest_written_parent() -> None:
    (resource,) = load(
        doc(
            "VirtualService",
            "reviews",
            "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}",
        )
    ).resources
    assert resource.key == ("VirtualService", "default", "reviews")
    assert resource.line_of("hosts") == 6
    assert resource.line_of("http[0].route[0].destination.host") == 9
    assert resource.line_of("http[0].timeout") == resource.line_of("http[0]") == 8
    issue = resource.issue("Error", "IST0106", "http[0].timeout", "too short")
    assert (issue.file, issue.line, issue.name) == ("test.yaml", 8, "reviews")
