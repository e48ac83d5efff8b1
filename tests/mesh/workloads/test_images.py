"""Container images → lab programs: Istio's images from any registry, the lab's own."""

from __future__ import annotations

import pytest

from mesh.workloads.images import Program, UnknownImage, program_of


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("registry.istio.io/release/examples-bookinfo-reviews-v2:1.20.3", Program("reviews", "v2")),
        ("docker.io/istio/examples-bookinfo-details-v2:1.16.2", Program("details", "v2")),
        (
            "localhost:5000/examples-bookinfo-productpage-v1@sha256:abc",
            Program("productpage", "v1"),
        ),
        ("docker.io/mccutchen/go-httpbin:v2.15.0", Program("httpbin")),
        ("docker.io/kennethreitz/httpbin", Program("httpbin")),
        ("curlimages/curl:8.16.0", Program("sleep")),
        ("fortio/fortio:latest_release", Program("fortio")),
        ("docker.io/istio/proxyv2:1.27.0", Program("gateway", gateway=True)),
    ],
)
def test_images_map_to_lab_programs_whatever_the_registry(image: str, expected: Program) -> None:
    assert program_of(image) == expected


def test_unknown_and_unsupported_images_say_why() -> None:
    assert isinstance(program_of("nginx:1.27"), UnknownImage)
    ratings_db = program_of("registry.istio.io/release/examples-bookinfo-ratings-v2:1.20.3")
    assert isinstance(ratings_db, UnknownImage) and "database" in ratings_db.reason
    assert program_of("ghcr.io/me/meshlab:2", ["reviews"]) == Program("reviews")
    assert isinstance(program_of("meshlab:latest", ["nginx"]), UnknownImage)
