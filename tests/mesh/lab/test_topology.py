"""The course lab's topology: Istio's Bookinfo, the course's extra pods, the gateway."""

from __future__ import annotations

from mesh.lab.topology import COURSE, GATEWAY_LABELS


def test_the_course_topology_is_istio_s_bookinfo_plus_the_course_pods() -> None:
    assert sorted(COURSE.service_names) == ["details", "productpage", "ratings", "reviews"]
    assert [p.name for p in COURSE.pods_of("details")] == [
        "details-v1",
        "details-v2",
        "details-v2-failing",
    ]
    assert {p.service_account for p in COURSE.pods_of("reviews")} == {"bookinfo-reviews"}
    (gateway,) = COURSE.gateway_pods
    assert (gateway.namespace, gateway.labels) == ("istio-system", GATEWAY_LABELS)
