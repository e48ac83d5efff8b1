"""Which lab program a container image runs (pure).

The lab runs its own Python programs (``services/<program>/``) in place of the images a
Kubernetes manifest names, so Istio's samples load unchanged: Istio's Bookinfo images
(``…/examples-bookinfo-reviews-v2:<tag>`` from any registry), its httpbin (``go-httpbin``,
``kennethreitz/httpbin``), its client pods (``curlimages/curl``, ``fortio/fortio``) and its
gateway (``istio/proxyv2``) map to the lab's programs; the lab's own image (``meshlab``,
any registry and tag) names the program in ``args[0]``.

Primitives: ``image_name`` (the repository's last path part, no registry, tag or digest),
``Program`` and ``program_of(image, args)``: the program, the code version an Istio image
implies (Bookinfo's images carry it in their name) and whether it is the gateway proxy; or
an ``UnknownImage`` saying why not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

LAB_IMAGE = "meshlab"
# The programs under services/ a pod can run (the gateway is the proxy itself).
LAB_PROGRAMS = ("productpage", "details", "reviews", "ratings", "httpbin", "sleep", "fortio")
BOOKINFO_IMAGE = re.compile(r"^examples-bookinfo-(productpage|details|reviews|ratings)-(v\d+)$")
# Bookinfo versions the lab's programs implement; others need what the lab does not run.
BOOKINFO_VERSIONS = {
    "productpage": ("v1",),
    "details": ("v1", "v2"),
    "reviews": ("v1", "v2", "v3"),
    "ratings": ("v1",),
}
SAMPLE_IMAGES = {
    "go-httpbin": "httpbin",
    "httpbin": "httpbin",
    "curl": "sleep",
    "sleep": "sleep",
    "curl-ssl": "sleep",
    "fortio": "fortio",
}
GATEWAY_IMAGES = ("proxyv2",)


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    # The version an image's name implies (examples-bookinfo-reviews-v2 is v2's code).
    version: str | None = None
    gateway: bool = False


@dataclass(frozen=True, slots=True)
class UnknownImage:
    reason: str


def image_name(image: str) -> str:
    """``registry.istio.io/release/examples-bookinfo-reviews-v2:1.20.3`` →
    ``examples-bookinfo-reviews-v2``."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def program_of(image: str, args: Sequence[str] = ()) -> Program | UnknownImage:
    name = image_name(image)
    bookinfo = BOOKINFO_IMAGE.match(name)
    if bookinfo:
        service, version = bookinfo.groups()
        if version not in BOOKINFO_VERSIONS[service]:
            return UnknownImage(
                f"{name}: the lab implements {service} "
                f"{', '.join(BOOKINFO_VERSIONS[service])} (this version needs a database or "
                "service the lab does not run)"
            )
        return Program(service, version)
    if name in SAMPLE_IMAGES:
        return Program(SAMPLE_IMAGES[name])
    if name in GATEWAY_IMAGES:
        return Program("gateway", gateway=True)
    if name == LAB_IMAGE:
        program = args[0] if args else ""
        if program in LAB_PROGRAMS:
            return Program(program)
        return UnknownImage(
            f"the {LAB_IMAGE} image runs the program named in args[0], one of "
            f"{', '.join(LAB_PROGRAMS)} (got {program or 'none'!r})"
        )
    return UnknownImage(
        f"image {image!r} is not one the lab can run: Istio's Bookinfo "
        "(examples-bookinfo-<service>-v<N>), httpbin, curl/sleep, fortio, istio/proxyv2, or "
        f"{LAB_IMAGE} with args [<program>]"
    )
