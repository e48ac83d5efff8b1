"""The snapshot: what the manager publishes and every sidecar loads.

Primitives: ``Endpoint`` (one ready pod address of a service, from the registry),
``Snapshot`` (version, content hash, the applied Istio resources as plain mappings, the
endpoints, and the service catalog: every Service of the topology, whether or not it has a
ready pod). It is plain JSON so that the manager, the sidecars and ``meshctl`` agree on one
file format: ``$MESH_DIR/snapshot/snapshot.json``, replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesh.topology import (
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE_ACCOUNT,
    Pod,
    Service,
    ServicePort,
    Topology,
)

SNAPSHOT_FILE = "snapshot.json"
# The lab's workloads as the manager serves them ($MESH_DIR/topology.json): what meshctl
# validates against when it runs beside a live mesh (Services exist before their pods do).
TOPOLOGY_FILE = "topology.json"


class SnapshotError(ValueError):
    """A snapshot file that cannot be read: truncated, garbage, or the wrong shape."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One pod behind a service: where to reach its sidecar's inbound listener."""

    pod: str
    service: str
    address: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    namespace: str = DEFAULT_NAMESPACE
    # The Deployment the pod belongs to (Istio's endpoint metadata carries it for the
    # client proxy's ``destination_workload``); "" = unknown (an old registry record).
    workload: str = ""
    # ``address:port``: the stable identity load balancers, pools and outlier detection use;
    # made once here, since the data plane reads it several times per request.
    key: str = field(init=False, repr=False, compare=False)
    # What Istio's endpoint metadata tells a client proxy for mTLS: the pod's service account
    # (the identity its certificate must carry; "" = unknown, not checked) and whether it has
    # a sidecar (``proxy`` "none": auto mTLS sends it plaintext, Istio's tlsMode disabled).
    service_account: str = ""
    proxy: str = "sidecar"

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.address}:{self.port}")

    def to_json(self) -> dict[str, Any]:
        return (
            {
                "pod": self.pod,
                "service": self.service,
                "address": self.address,
                "port": self.port,
                "labels": dict(self.labels),
                "ready": self.ready,
                "namespace": self.namespace,
            }
            | ({"workload": self.workload} if self.workload else {})
            | self._security_json()
        )

    def _security_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.service_account:
            extra["service_account"] = self.service_account
        if self.proxy != "sidecar":
            extra["proxy"] = self.proxy
        return extra

    @property
    def fqdn(self) -> str:
        """The host this endpoint serves: its Service's FQDN, or a ServiceEntry's host as
        written (a Kubernetes Service name has no dot; a host with one is a DNS name)."""
        if "." in self.service:
            return self.service
        return f"{self.service}.{self.namespace}.svc.cluster.local"

    def as_pod(self) -> Pod:
        """The pod behind this endpoint, as the topology describes pods."""
        proxy: Any = self.proxy if self.proxy in ("sidecar", "gateway", "none") else "sidecar"
        return Pod(
            self.pod,
            self.labels,
            namespace=self.namespace,
            service_name=self.service,
            service_account=self.service_account or DEFAULT_SERVICE_ACCOUNT,
            proxy=proxy,
            port=self.port,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Endpoint:
        try:
            labels = data.get("labels") or {}
            if not isinstance(labels, Mapping):
                raise TypeError("labels must be a mapping")
            return cls(
                pod=str(data["pod"]),
                service=str(data["service"]),
                address=str(data["address"]),
                port=int(data["port"]),
                labels={str(k): str(v) for k, v in labels.items()},
                ready=bool(data.get("ready", True)),
                namespace=str(data.get("namespace") or DEFAULT_NAMESPACE),
                workload=str(data.get("workload") or ""),
                service_account=str(data.get("service_account") or ""),
                proxy=str(data.get("proxy") or "sidecar"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"bad endpoint record {data!r}: {exc}") from exc


def service_to_json(service: Service) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": service.name,
        "namespace": service.namespace,
        "ports": [
            {"name": p.name, "number": p.number}
            | ({"target_port": p.target_port} if p.target_port is not None else {})
            for p in service.ports
        ],
    }
    if service.selector is not None:
        data["selector"] = dict(service.selector)
    if service.export_to:
        data["export_to"] = list(service.export_to)
    return data


def service_from_json(data: Any) -> Service:
    try:
        ports = tuple(
            ServicePort(
                int(p["number"]),
                str(p.get("name") or ""),
                int(p["target_port"]) if p.get("target_port") is not None else None,
            )
            for p in data.get("ports") or ()
        )
        selector = data.get("selector")
        return Service(
            str(data["name"]),
            str(data["namespace"]),
            ports,
            {str(k): str(v) for k, v in selector.items()} if selector is not None else None,
            tuple(str(n) for n in data.get("export_to") or ()),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"bad service record {data!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One published state of the mesh: config plus endpoints, versioned and hashed."""

    version: int
    resources: tuple[Mapping[str, Any], ...]
    endpoints: tuple[Endpoint, ...]
    hash: str = ""
    generated_at: float = 0.0
    services: tuple[Service, ...] = ()

    @staticmethod
    def content_hash(
        resources: tuple[Mapping[str, Any], ...],
        endpoints: tuple[Endpoint, ...],
        services: tuple[Service, ...] = (),
    ) -> str:
        """Hash of what routing depends on (not of version or time), to skip no-op publishes."""
        body = json.dumps(
            {
                "resources": list(resources),
                "endpoints": sorted((e.to_json() for e in endpoints), key=lambda e: e["pod"]),
                "services": [service_to_json(s) for s in services],
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "hash": self.hash,
                "generated_at": self.generated_at,
                "resources": list(self.resources),
                "endpoints": [e.to_json() for e in self.endpoints],
                "services": [service_to_json(s) for s in self.services],
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Snapshot:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SnapshotError(f"snapshot is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise SnapshotError("snapshot is not a JSON object")
        try:
            version = int(data["version"])
            resources = data["resources"]
            endpoints = data["endpoints"]
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"snapshot lacks version/resources/endpoints: {exc}") from exc
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            raise SnapshotError("snapshot resources must be a list of objects")
        if not isinstance(endpoints, list):
            raise SnapshotError("snapshot endpoints must be a list")
        services = data.get("services", [])  # older snapshots carry no catalog
        if not isinstance(services, list):
            raise SnapshotError("snapshot services must be a list")
        return cls(
            version=version,
            resources=tuple(resources),
            endpoints=tuple(Endpoint.from_json(e) for e in endpoints),
            hash=str(data.get("hash", "")),
            generated_at=float(data.get("generated_at", 0.0)),
            services=tuple(service_from_json(s) for s in services),
        )


def topology_to_json(topology: Topology) -> dict[str, Any]:
    return {
        "services": [service_to_json(s) for s in topology.services],
        "pods": [
            {
                "name": p.name,
                "namespace": p.namespace,
                "labels": dict(p.labels),
                "service": p.service,
                "service_account": p.service_account,
                "proxy": p.proxy,
                "port": p.port,
            }
            for p in topology.pods
        ],
        "namespaces": list(topology.namespaces),
        "service_accounts": [list(a) for a in topology.service_accounts],
    }


def topology_from_json(data: Any) -> Topology:
    try:
        pods = tuple(
            Pod(
                str(p["name"]),
                {str(k): str(v) for k, v in (p.get("labels") or {}).items()},
                namespace=str(p.get("namespace") or DEFAULT_NAMESPACE),
                service_account=str(p.get("service_account") or "default"),
                service_name=str(p.get("service") or ""),
                proxy=p.get("proxy")
                if p.get("proxy") in ("sidecar", "gateway", "none")
                else "sidecar",
                port=int(p.get("port") or 9080),
            )
            for p in data.get("pods") or ()
        )
        return Topology(
            services=tuple(service_from_json(s) for s in data.get("services") or ()),
            pods=pods,
            namespaces=tuple(str(n) for n in data.get("namespaces") or (DEFAULT_NAMESPACE,)),
            service_accounts=tuple(
                (str(a[0]), str(a[1])) for a in data.get("service_accounts") or ()
            ),
        )
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise SnapshotError(f"bad topology: {exc}") from exc
