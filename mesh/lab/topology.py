"""The course lab's topology: Istio's Bookinfo plus the course's extra pods, as ``Topology``.

One description serves every consumer: ``meshlab up --local`` starts these pods as local
processes, the compose file runs the same pods as containers, the manager knows these
Services (a Service exists whether or not its pods are up), and ``meshctl analyze`` uses the
pods' labels as the known endpoints when no live mesh is given (so ``reviews`` is a known host
and a subset that selects no pods is caught offline).

``COURSE`` is the whole topology; ``BOOKINFO_PODS`` its app pods in start order, ``GATEWAY``
the ingress gateway's pod.
"""

from __future__ import annotations

from mesh.topology import (
    ROOT_NAMESPACE,
    Pod,
    ReadinessProbe,
    Service,
    ServicePort,
    Topology,
)

SERVICE_PORT = 9080
OUTBOUND_PORT = 15001
ADMIN_PORT = 15000
GATEWAY_PORT = 8080
GATEWAY_POD = "istio-ingressgateway"
GATEWAY_LABELS: dict[str, str] = {"istio": "ingressgateway", "app": "istio-ingressgateway"}

# Fast enough for the readiness demo (a failing pod leaves within ~1 s), and one slow answer
# is not enough to take a busy pod out (timeout 2 s, two failures in a row).
LAB_READINESS = ReadinessProbe(period_seconds=1.0, timeout_seconds=2.0, failure_threshold=2)

# productpage waits on its upstreams (2.5 s under the delay demo): enough threads that its
# /health probe is still answered while a room full of testers waits.
PRODUCTPAGE_ENV = {"GUNICORN_THREADS": "32"}

SERVICES: tuple[str, ...] = ("productpage", "details", "reviews", "ratings")


def bookinfo_pod(
    name: str,
    service: str,
    version: str,
    env: dict[str, str] | None = None,
    readiness: ReadinessProbe = LAB_READINESS,
) -> Pod:
    """A Bookinfo pod as Istio's bookinfo.yaml deploys it: labels ``app``/``version`` and the
    service account ``bookinfo-<service>``."""
    return Pod(
        name=name,
        labels={"app": service, "version": version},
        service_account=f"bookinfo-{service}",
        workload=name,
        env=env or {},
        readiness=readiness,
    )


BOOKINFO_PODS: tuple[Pod, ...] = (
    bookinfo_pod("productpage-v1", "productpage", "v1", env=PRODUCTPAGE_ENV),
    bookinfo_pod("productpage-v2", "productpage", "v2", env=PRODUCTPAGE_ENV),
    bookinfo_pod("details-v1", "details", "v1"),
    bookinfo_pod("details-v2", "details", "v2"),
    # The circuit-breaker demo: same labels as details-v2, but every request fails with 503
    # while /health stays green, so only outlier detection can take it out of rotation.
    bookinfo_pod("details-v2-failing", "details", "v2", env={"FAIL_MODE": "503"}),
    bookinfo_pod("reviews-v1", "reviews", "v1"),
    bookinfo_pod("reviews-v2", "reviews", "v2"),
    bookinfo_pod("reviews-v3", "reviews", "v3"),
    bookinfo_pod("ratings-v1", "ratings", "v1"),
)

GATEWAY = Pod(
    name=GATEWAY_POD,
    labels=GATEWAY_LABELS,
    namespace=ROOT_NAMESPACE,
    service_account="istio-ingressgateway-service-account",
    workload=GATEWAY_POD,
    proxy="gateway",
)

COURSE = Topology(
    services=tuple(Service(name, ports=(ServicePort(SERVICE_PORT),)) for name in SERVICES),
    pods=(*BOOKINFO_PODS, GATEWAY),
    namespaces=("default", ROOT_NAMESPACE),
    service_accounts=(
        *(("default", f"bookinfo-{name}") for name in SERVICES),
        (ROOT_NAMESPACE, GATEWAY.service_account),
    ),
)
