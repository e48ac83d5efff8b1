"""The mesh's world as plain data: namespaces, service accounts, Services and pods.

Primitives:

- ``ServicePort``: one port of a Service (name, number, target port, protocol), as a
  Kubernetes Service lists them; a Service may have several.
- ``Service``: a name in a namespace with its ports and its selector (``app: <name>`` unless
  set); ``fqdn`` is ``<name>.<namespace>.svc.cluster.local``.
- ``ReadinessProbe``: Kubernetes' ``readinessProbe.httpGet`` with Kubernetes' defaults.
- ``Pod``: one pod (a Deployment's replica): name, namespace, labels, service account, the
  Deployment (``workload``) it belongs to, which lab ``program`` runs in it (services/<program>),
  its env and readiness probe, and which ``proxy`` it runs: its own ``sidecar``, none (Istio's
  ``sidecar.istio.io/inject: "false"``), or it *is* a ``gateway`` proxy.
- ``Topology``: all of the above for one lab. The pure core (``mesh.config``'s analyzer,
  ``mesh.routing``) reads services, pods and gateway labels from here and from nothing else;
  a shell builds it from Kubernetes manifests (``mesh.workloads``, read by
  ``mesh.lab.workloads``) and passes it in.

Which Service a pod serves is the pod's ``service`` (default: its ``app`` label): the lab
registers each pod under one Service, as its sidecar's registry record does; a loader that
reads Kubernetes Services computes it from their selectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

DEFAULT_NAMESPACE = "default"
# Istio's config root namespace: where the ingress gateway runs and mesh-wide config lives.
ROOT_NAMESPACE = "istio-system"
CLUSTER_DOMAIN = "cluster.local"
DEFAULT_SERVICE_ACCOUNT = "default"

ProxyKind = Literal["sidecar", "gateway", "none"]


def exported_to(export_to: Iterable[str], owner: str, client: str) -> bool:
    """Istio's ``exportTo`` (Services, VirtualServices, DestinationRules): empty or ``*``
    everyone, ``.`` the owner's own namespace, ``~`` nobody, else the namespaces named."""
    names = tuple(export_to)
    if not names or "*" in names:
        return True
    if "~" in names:
        return False
    return client in names or ("." in names and client == owner)


def _no_labels() -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Service; ``target_port`` None means the same number on the pod."""

    number: int
    name: str = "http"
    target_port: int | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    namespace: str = DEFAULT_NAMESPACE
    ports: tuple[ServicePort, ...] = (ServicePort(9080),)
    # None: Kubernetes' convention for the lab's Services, ``app: <name>``.
    selector: Mapping[str, str] | None = None
    # Istio's ``networking.istio.io/exportTo`` annotation: namespaces that see the Service
    # ("." its own, "*" all; empty: all).
    export_to: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``namespace/name``, unique in a topology."""
        return f"{self.namespace}/{self.name}"

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.{CLUSTER_DOMAIN}"

    @property
    def pod_selector(self) -> Mapping[str, str]:
        return {"app": self.name} if self.selector is None else self.selector

    def port(self, number_or_name: int | str) -> ServicePort | None:
        for port in self.ports:
            if number_or_name in (port.number, port.name):
                return port
        return None

    def visible_from(self, namespace: str) -> bool:
        """Does a proxy in ``namespace`` see this Service (``exportTo``)?"""
        return exported_to(self.export_to, self.namespace, namespace)


@dataclass(frozen=True, slots=True)
class ReadinessProbe:
    """Kubernetes ``readinessProbe.httpGet`` with Kubernetes' defaults."""

    path: str = "/health"
    initial_delay_seconds: float = 0.0
    period_seconds: float = 10.0
    timeout_seconds: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    labels: Mapping[str, str] = field(default_factory=_no_labels)
    namespace: str = DEFAULT_NAMESPACE
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    # The Deployment this pod is a replica of ("" = the pod's own name).
    workload: str = ""
    # The Service this pod is registered under ("" = its ``app`` label).
    service_name: str = ""
    # Which of the lab's programs (services/<program>/) runs in the pod ("" = its service).
    program: str = ""
    env: Mapping[str, str] = field(default_factory=_no_labels)
    readiness: ReadinessProbe | None = None
    proxy: ProxyKind = "sidecar"
    # The port the pod serves on (its container port): where its sidecar (or, without one,
    # its app) listens and what its endpoint records.
    port: int = 9080

    @property
    def service(self) -> str:
        return self.service_name or self.labels.get("app", "") or self.name

    @property
    def version(self) -> str:
        return self.labels.get("version", "")

    @property
    def workload_name(self) -> str:
        return self.workload or self.name

    @property
    def runs(self) -> str:
        """The lab program in this pod's container."""
        return self.program or self.service


@dataclass(frozen=True, slots=True)
class Topology:
    """One lab's world. Order is kept: it is the order pods start and tables list them."""

    services: tuple[Service, ...] = ()
    pods: tuple[Pod, ...] = ()
    namespaces: tuple[str, ...] = (DEFAULT_NAMESPACE,)
    # (namespace, name) of every ServiceAccount.
    service_accounts: tuple[tuple[str, str], ...] = ()

    @property
    def service_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.services)

    @property
    def service_fqdns(self) -> frozenset[str]:
        return frozenset(s.fqdn for s in self.services)

    @property
    def app_pods(self) -> tuple[Pod, ...]:
        """Pods that serve a Service (not gateway proxies)."""
        return tuple(p for p in self.pods if p.proxy != "gateway")

    @property
    def gateway_pods(self) -> tuple[Pod, ...]:
        return tuple(p for p in self.pods if p.proxy == "gateway")

    def service(self, name: str, namespace: str = DEFAULT_NAMESPACE) -> Service | None:
        for service in self.services:
            if service.name == name and service.namespace == namespace:
                return service
        return None

    def pod(self, name: str) -> Pod | None:
        for pod in self.pods:
            if pod.name == name:
                return pod
        return None

    def pods_of(self, service: str, namespace: str = DEFAULT_NAMESPACE) -> tuple[Pod, ...]:
        return tuple(p for p in self.app_pods if p.service == service and p.namespace == namespace)

    def with_app_pods(self, pods: Iterable[Pod]) -> Topology:
        """This topology with the pods that really exist (e.g. a live registry's) instead of
        its own app pods. A pod of a Service the topology does not list brings that Service
        (the lab registers pods under a Service name: the Service exists)."""
        live = tuple(pods)
        services = list(self.services)
        known = {(s.namespace, s.name) for s in services}
        for pod in live:
            if (pod.namespace, pod.service) not in known:
                known.add((pod.namespace, pod.service))
                services.append(Service(pod.service, pod.namespace))
        return replace(self, services=tuple(services), pods=(*live, *self.gateway_pods))
