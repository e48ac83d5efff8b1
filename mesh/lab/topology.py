"""The lab's topology as data: which pods exist, their labels, and how each is started.

One description serves every consumer: ``meshlab up --local`` starts these pods as local
processes, the compose file runs the same pods as containers, and ``meshctl analyze`` uses
their labels as the known hosts and endpoints when no live mesh is given (so ``reviews`` is a
known host and a subset that selects no pods is caught offline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICE_PORT = 9080
OUTBOUND_PORT = 15001
ADMIN_PORT = 15000
GATEWAY_PORT = 8080
GATEWAY_LABELS: dict[str, str] = {"istio": "ingressgateway", "app": "istio-ingressgateway"}


@dataclass(frozen=True)
class ReadinessProbe:
    """Kubernetes ``readinessProbe.httpGet`` with Kubernetes' defaults."""

    path: str = "/health"
    initial_delay_seconds: float = 0.0
    period_seconds: float = 10.0
    timeout_seconds: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclass(frozen=True)
class Pod:
    """One Bookinfo pod: a Flask app and its sidecar."""

    name: str
    service: str
    version: str
    env: dict[str, str] = field(default_factory=dict)
    # Fast enough for the readiness demo (a failing pod leaves within ~1 s), and one slow
    # answer is not enough to take a busy pod out (timeout 2 s, two failures in a row).
    readiness: ReadinessProbe = ReadinessProbe(
        period_seconds=1.0, timeout_seconds=2.0, failure_threshold=2
    )

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.service, "version": self.version}

    @property
    def app_module(self) -> str:
        """The gunicorn application spec of this pod's service."""
        return f"services.{self.service}.app:create_app()"


# productpage waits on its upstreams (2.5 s under the delay demo): enough threads that its
# /health probe is still answered while a room full of testers waits.
PRODUCTPAGE_ENV = {"GUNICORN_THREADS": "32"}

BOOKINFO_PODS: tuple[Pod, ...] = (
    Pod("productpage-v1", "productpage", "v1", env=PRODUCTPAGE_ENV),
    Pod("productpage-v2", "productpage", "v2", env=PRODUCTPAGE_ENV),
    Pod("details-v1", "details", "v1"),
    Pod("details-v2", "details", "v2"),
    # The circuit-breaker demo: same labels as details-v2, but every request fails with 503
    # while /health stays green, so only outlier detection can take it out of rotation.
    Pod("details-v2-failing", "details", "v2", env={"FAIL_MODE": "503"}),
    Pod("reviews-v1", "reviews", "v1"),
    Pod("reviews-v2", "reviews", "v2"),
    Pod("reviews-v3", "reviews", "v3"),
    Pod("ratings-v1", "ratings", "v1"),
)

SERVICES: tuple[str, ...] = ("productpage", "details", "reviews", "ratings")


def pods_of(service: str) -> list[Pod]:
    return [pod for pod in BOOKINFO_PODS if pod.service == service]
