"""Mutual TLS as Istio resolves it: what a server accepts, what a client sends, what happens.

Primitives:

- ``PeerAuthentications``: the PeerAuthentication resources of the mesh, indexed. For a
  workload and port, ``for_workload`` gives the ``EffectiveMtls`` (Istio's
  ``ComposePeerAuthentication``): the mesh-wide policy (root namespace ``istio-system``, no
  selector), then the namespace-wide one, then the workload's (a selector, not in the root
  namespace), each narrower scope overriding, ``UNSET`` inheriting, ``portLevelMtls`` last;
  PERMISSIVE when nothing is set. Of two policies at one scope the first applied wins (Istio:
  the oldest). ``namespace_mode`` is what auto mTLS infers for a service's namespace
  (``GetNamespaceMutualTLSMode``).
- ``client_tls(...)``: what a client sidecar sends to one endpoint (``ClientTLS``): a
  DestinationRule ``tls`` (traffic policy, port-level, subset, with Istio's precedence)
  decides when set; otherwise auto mTLS — mTLS to an endpoint with a sidecar whose port is
  not DISABLE, plaintext to one without (or when the service's namespace is DISABLE).
- ``connect(...)``: the ``Outcome`` of one connection — ``mutual_tls``, ``plaintext``,
  ``reset`` (a plaintext client at a STRICT server: the client sees ``curl: (56) ... reset``,
  or its sidecar answers 503 UC) or ``tls_error`` (TLS the server cannot terminate: the client
  sidecar answers 503 UF).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from mesh.config.model import (
    ClientTLSSettings,
    DestinationRule,
    MutualTLS,
    PeerAuthentication,
    TrafficPolicy,
)
from mesh.security.policy import ROOT_NAMESPACE, PolicyResource, policy_key
from mesh.security.workload import has_labels, has_proxy, selects
from mesh.topology import Pod


class MtlsMode(StrEnum):
    """A server's effective mode (UNSET is resolved away)."""

    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"


Scope = Literal["default", "mesh", "namespace", "workload", "port"]


@dataclass(frozen=True, slots=True)
class EffectiveMtls:
    """A server's mode on one port, and which policy decided it (for ``describe``)."""

    mode: MtlsMode
    scope: Scope = "default"
    policy: str | None = None  # "<namespace>/<name>" of the deciding PeerAuthentication


def _mode(mtls: MutualTLS | None) -> MtlsMode | None:
    """A policy's own mode; None when it inherits (no ``mtls``, or ``mode: UNSET``)."""
    if mtls is None or mtls.mode in (None, "UNSET"):
        return None
    return MtlsMode(mtls.mode)


class PeerAuthentications:
    """Every PeerAuthentication of the mesh, in the order they were applied."""

    def __init__(
        self, resources: Iterable[PolicyResource], root_namespace: str = ROOT_NAMESPACE
    ) -> None:
        self.root_namespace = root_namespace
        self._mesh: PolicyResource | None = None
        self._namespace: dict[str, PolicyResource] = {}
        self._workload: dict[str, list[PolicyResource]] = {}
        for resource in resources:
            if resource.kind != "PeerAuthentication":
                continue
            spec: PeerAuthentication = resource.spec
            if not has_labels(spec.selector):
                if resource.namespace == root_namespace:
                    self._mesh = self._mesh or resource
                else:
                    self._namespace.setdefault(resource.namespace, resource)
            elif resource.namespace != root_namespace:
                # Istio ignores workload selectors in the root namespace.
                self._workload.setdefault(resource.namespace, []).append(resource)

    def mesh_policy(self) -> PolicyResource | None:
        return self._mesh

    def namespace_policy(self, namespace: str) -> PolicyResource | None:
        return self._namespace.get(namespace)

    def workload_policy(self, workload: Pod) -> PolicyResource | None:
        """The first workload-level policy of its namespace that selects it."""
        for resource in self._workload.get(workload.namespace, ()):
            if selects(resource.spec.selector, workload.labels):
                return resource
        return None

    def for_workload(self, workload: Pod, port: int | None = None) -> EffectiveMtls:
        """What the workload's sidecar accepts on ``port`` (its container port)."""
        effective = EffectiveMtls(MtlsMode.PERMISSIVE)
        layers: tuple[tuple[Scope, PolicyResource | None], ...] = (
            ("mesh", self._mesh),
            ("namespace", self._namespace.get(workload.namespace)),
            ("workload", self.workload_policy(workload)),
        )
        for scope, resource in layers:
            if resource is None:
                continue
            mode = _mode(resource.spec.mtls)
            if mode is not None:
                effective = EffectiveMtls(mode, scope, policy_key(resource))
        workload_policy = layers[2][1]
        if workload_policy is not None and port is not None:
            for written, mtls in (workload_policy.spec.port_level_mtls or {}).items():
                if _port_number(written) == port:
                    mode = _mode(mtls)
                    if mode is not None:  # UNSET at a port inherits the workload's mode
                        effective = EffectiveMtls(mode, "port", policy_key(workload_policy))
        return effective

    def namespace_mode(self, namespace: str) -> MtlsMode:
        """The mode auto mTLS infers for a service in ``namespace`` (namespace- and
        mesh-level policies only: a client cannot know a workload-level one)."""
        mesh = _mode(self._mesh.spec.mtls) if self._mesh is not None else None
        inherited = mesh or MtlsMode.PERMISSIVE
        namespace_policy = self._namespace.get(namespace)
        if namespace_policy is not None:
            return _mode(namespace_policy.spec.mtls) or inherited
        return inherited


def _port_number(written: str) -> int | None:
    try:
        return int(written)
    except ValueError:
        return None


# ---------------------------------------------------------------- client side


class ClientTLS(StrEnum):
    """What a client sidecar sends on a connection."""

    ISTIO_MUTUAL = "ISTIO_MUTUAL"  # mTLS with the mesh's workload certificates
    PLAINTEXT = "PLAINTEXT"
    SIMPLE = "SIMPLE"  # TLS origination, no client certificate
    MUTUAL = "MUTUAL"  # TLS origination with certificates given in the DestinationRule


def _port_level(policy: TrafficPolicy | None, port: int) -> tuple[TrafficPolicy | None, bool]:
    """Istio's ``GetPortLevelTrafficPolicy``: a matching ``portLevelSettings`` entry replaces
    the policy wholesale (its unset fields do not inherit)."""
    if policy is None:
        return None, False
    for level in policy.port_level_settings:
        if level.port is not None and level.port.number == port:
            return (
                TrafficPolicy(
                    load_balancer=level.load_balancer,
                    connection_pool=level.connection_pool,
                    outlier_detection=level.outlier_detection,
                    tls=level.tls,
                ),
                True,
            )
    return policy, False


def cluster_tls(
    rule: DestinationRule | None, subset: str | None, service_port: int
) -> ClientTLSSettings | None:
    """The DestinationRule ``tls`` for the (host, subset, port) cluster, with Istio's
    precedence (``MergeSubsetTrafficPolicy``): the rule's port-level settings replace its
    traffic policy; a subset's ``tls`` (or its port-level entry, wholesale) overrides."""
    if rule is None:
        return None
    merged, _ = _port_level(rule.traffic_policy, service_port)
    chosen = next((s for s in rule.subsets if subset and s.name == subset), None)
    if chosen is None or chosen.traffic_policy is None:
        return merged.tls if merged is not None else None
    subset_policy, subset_port_level = _port_level(chosen.traffic_policy, service_port)
    if subset_policy is not None and (subset_policy.tls is not None or subset_port_level):
        return subset_policy.tls
    return merged.tls if merged is not None else None


def endpoint_tls_mode(
    rule: DestinationRule | None, subset: str | None, service_port: int
) -> str | None:
    """The DestinationRule mode auto mTLS reads per endpoint (Istio's ``mtlsChecker``): the
    subset's mode for the port, else the rule's; a port-level entry without ``tls`` falls back
    to its policy's ``tls`` here (unlike the cluster's merge above)."""
    if rule is None:
        return None

    def for_port(policy: TrafficPolicy | None) -> str | None:
        if policy is None:
            return None
        mode = policy.tls.mode if policy.tls is not None else None
        for level in policy.port_level_settings:
            if level.port is not None and level.port.number == service_port and level.tls:
                return level.tls.mode
        return mode

    if subset:
        for candidate in rule.subsets:
            if candidate.name == subset:
                return for_port(candidate.traffic_policy) or for_port(rule.traffic_policy)
        return None
    return for_port(rule.traffic_policy)


def client_tls(
    *,
    server: Pod,
    target_port: int,
    service_namespace: str,
    service_port: int,
    peer_authentications: PeerAuthentications,
    rule: DestinationRule | None = None,
    subset: str | None = None,
    auto_mtls: bool = True,
) -> ClientTLS:
    """What a client sidecar sends to ``server`` (one endpoint of the service) on
    ``target_port`` (the endpoint's port; ``service_port`` is the one DestinationRules name)."""
    settings = cluster_tls(rule, subset, service_port)
    if settings is not None and settings.mode is not None:
        # Set in a DestinationRule: applied to every endpoint, sidecar or not.
        return {
            "DISABLE": ClientTLS.PLAINTEXT,
            "SIMPLE": ClientTLS.SIMPLE,
            "MUTUAL": ClientTLS.MUTUAL,
            "ISTIO_MUTUAL": ClientTLS.ISTIO_MUTUAL,
        }[settings.mode]
    if not auto_mtls or peer_authentications.namespace_mode(service_namespace) is MtlsMode.DISABLE:
        return ClientTLS.PLAINTEXT
    # Auto mTLS decides per endpoint from the metadata the control plane gives it.
    endpoint_mode = endpoint_tls_mode(rule, subset, service_port)
    if endpoint_mode is not None:
        return ClientTLS.ISTIO_MUTUAL if endpoint_mode == "ISTIO_MUTUAL" else ClientTLS.PLAINTEXT
    if not has_proxy(server):
        return ClientTLS.PLAINTEXT
    server_mode = peer_authentications.for_workload(server, target_port).mode
    return ClientTLS.PLAINTEXT if server_mode is MtlsMode.DISABLE else ClientTLS.ISTIO_MUTUAL


# ---------------------------------------------------------------- the connection

Result = Literal["mutual_tls", "plaintext", "reset", "tls_error"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One connection's fate. ``connection_security_policy`` is the metric label Istio's
    server side reports (``mutual_tls``/``none``); ``status``/``response_flag`` are what the
    client's sidecar answers when it turns the failure into a reply (None for a client without
    sidecar, which sees the reset itself)."""

    result: Result
    reason: str
    status: int | None = None
    response_flag: str | None = None

    @property
    def ok(self) -> bool:
        return self.result in ("mutual_tls", "plaintext")

    @property
    def connection_security_policy(self) -> str:
        return {"mutual_tls": "mutual_tls", "plaintext": "none"}.get(self.result, "unknown")


def connect(
    *,
    client_sidecar: bool,
    sends: ClientTLS,
    server: Pod,
    server_mode: MtlsMode,
    server_speaks_tls: bool = False,
) -> Outcome:
    """The outcome of one connection. A client without sidecar always sends plaintext.
    ``server_speaks_tls``: the application itself terminates TLS (a SIMPLE/MUTUAL target)."""
    if not client_sidecar:
        sends = ClientTLS.PLAINTEXT

    def failed(result: Result, reason: str, flag: str) -> Outcome:
        if client_sidecar:
            return Outcome(result, reason, 503, flag)
        return Outcome(result, reason)

    if not has_proxy(server):
        if sends is ClientTLS.PLAINTEXT:
            return Outcome("plaintext", "the server has no sidecar: plaintext to the app")
        if sends in (ClientTLS.SIMPLE, ClientTLS.MUTUAL) and server_speaks_tls:
            return Outcome("plaintext", "TLS origination to an app that terminates TLS itself")
        return failed(
            "tls_error",
            f"the client sends {sends} to a server without sidecar, whose app speaks plaintext",
            "UF",
        )
    if sends is ClientTLS.ISTIO_MUTUAL:
        if server_mode is MtlsMode.DISABLE:
            return failed(
                "tls_error",
                "the client sends mTLS, the server's PeerAuthentication is DISABLE: the TLS "
                "handshake reaches a plaintext listener",
                "UF",
            )
        return Outcome("mutual_tls", f"mTLS accepted ({server_mode})")
    if sends is ClientTLS.PLAINTEXT:
        if server_mode is MtlsMode.STRICT:
            return failed(
                "reset",
                "the server requires mTLS (STRICT) and the client sends plaintext: the "
                "connection is reset",
                "UC",
            )
        return Outcome("plaintext", f"plaintext accepted ({server_mode})")
    # SIMPLE/MUTUAL with the DestinationRule's own certificates, at a mesh sidecar: not the
    # mesh's mTLS, so STRICT refuses it and PERMISSIVE/DISABLE hand TLS bytes to the app.
    if server_speaks_tls and server_mode is not MtlsMode.STRICT:
        return Outcome("plaintext", "TLS origination passed through to an app that speaks TLS")
    return failed(
        "tls_error",
        f"the client originates TLS ({sends}) that the server's sidecar does not terminate",
        "UF",
    )


def reachability(
    *,
    client: Pod,
    server: Pod,
    target_port: int,
    service_port: int,
    peer_authentications: PeerAuthentications,
    rules: Mapping[str, DestinationRule] | None = None,
    service_host: str = "",
    subset: str | None = None,
) -> Outcome:
    """``client`` calls ``server``'s service: what the client sends, what the server accepts,
    the outcome. ``rules`` maps a service host to the DestinationRule that applies to it."""
    rule = (rules or {}).get(service_host)
    sends = (
        client_tls(
            server=server,
            target_port=target_port,
            service_namespace=server.namespace,
            service_port=service_port,
            peer_authentications=peer_authentications,
            rule=rule,
            subset=subset,
        )
        if has_proxy(client)
        else ClientTLS.PLAINTEXT
    )
    server_mode = peer_authentications.for_workload(server, target_port).mode
    return connect(
        client_sidecar=has_proxy(client), sends=sends, server=server, server_mode=server_mode
    )
