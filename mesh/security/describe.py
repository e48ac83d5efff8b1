"""``meshctl describe pod``: one pod's security as ``istioctl x describe pod`` shows it.

``describe_pod(pod, topology, resources)`` → ``PodDescription`` (pure: the topology and the
applied resources are passed in): the pod's identity, the Services it backs (and which of
their ports target it), the PeerAuthentication that decides its mode (workload-wide and per
port, with the deciding policy) and every one that applies, the AuthorizationPolicies its
proxy enforces, what each other pod's proxy sends it and what happens
(``mesh.security.mtls.reachability``: auto mTLS or the DestinationRule ``tls`` that applies —
in the client's namespace, else the service's, else the root namespace, as Istio looks a
DestinationRule up), and the analyzer's findings about the policies and rules that touch it.
``render(description, certificate)`` is the text; ``certificate`` is what the caller read of
the pod's certificate (serial, not_after...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesh.config.issues import Issue
from mesh.config.resource import Resource, display_name
from mesh.security.analysis import analyze_security, service_of_host
from mesh.security.authz import AuthorizationPolicies, CompiledPolicy
from mesh.security.identity import Identity, pod_identity
from mesh.security.mtls import (
    ClientTLS,
    EffectiveMtls,
    Outcome,
    PeerAuthentications,
    client_tls,
    reachability,
)
from mesh.security.workload import has_proxy
from mesh.topology import ROOT_NAMESPACE, Pod, Service, ServicePort, Topology

RULE = "--------------------"


@dataclass(frozen=True, slots=True)
class ClientView:
    client: Pod
    service: Service
    port: ServicePort
    tls_from: str  # "auto mTLS" or "DestinationRule <ns>/<name>"
    outcome: Outcome
    sends: ClientTLS


@dataclass(frozen=True, slots=True)
class PodDescription:
    pod: Pod
    identity: Identity | None
    services: tuple[tuple[Service, tuple[ServicePort, ...]], ...]
    workload_mtls: EffectiveMtls
    port_mtls: tuple[tuple[int, EffectiveMtls], ...]
    peer_authentications: tuple[str, ...]
    policies: tuple[CompiledPolicy, ...]
    clients: tuple[ClientView, ...]
    findings: tuple[Issue, ...]


def _target(port: ServicePort) -> int:
    return port.target_port or port.number


def backing_services(pod: Pod, topology: Topology) -> list[tuple[Service, tuple[ServicePort, ...]]]:
    """The Services whose selector picks the pod, with their ports that reach it."""
    found = []
    for service in topology.services:
        if service.namespace != pod.namespace:
            continue
        selector = service.pod_selector
        if not selector or any(pod.labels.get(k) != v for k, v in selector.items()):
            continue
        ports = tuple(p for p in service.ports if _target(p) == pod.port) or service.ports
        found.append((service, ports))
    return found


def _rule_for(
    resources: Sequence[Resource], client_namespace: str, service: Service
) -> Resource | None:
    """The DestinationRule a client in ``client_namespace`` applies to ``service``."""
    by_namespace: dict[str, Resource] = {}
    for resource in resources:
        if resource.kind != "DestinationRule":
            continue
        target = service_of_host(resource.spec.host, resource.namespace)
        if target == (service.name, service.namespace):
            by_namespace.setdefault(resource.namespace, resource)
    for namespace in (client_namespace, service.namespace, ROOT_NAMESPACE):
        if namespace in by_namespace:
            return by_namespace[namespace]
    return None


def describe_pod(pod: Pod, topology: Topology, resources: Sequence[Resource]) -> PodDescription:
    peer_authns = PeerAuthentications(resources)
    services = backing_services(pod, topology)
    ports = sorted({pod.port, *(_target(p) for _s, ps in services for p in ps)})
    applied = [
        r
        for r in (
            peer_authns.mesh_policy(),
            peer_authns.namespace_policy(pod.namespace),
            peer_authns.workload_policy(pod),
        )
        if r is not None
    ]
    policies = AuthorizationPolicies(resources).for_workload(pod)
    clients: list[ClientView] = []
    for client in topology.pods:
        if client.name == pod.name:
            continue
        for service, service_ports in services:
            for port in service_ports:
                rule = _rule_for(resources, client.namespace, service)
                sends = (
                    client_tls(
                        server=pod,
                        target_port=_target(port),
                        service_namespace=service.namespace,
                        service_port=port.number,
                        peer_authentications=peer_authns,
                        rule=rule.spec if rule is not None else None,
                    )
                    if has_proxy(client)
                    else ClientTLS.PLAINTEXT
                )
                outcome = reachability(
                    client=client,
                    server=pod,
                    target_port=_target(port),
                    service_port=port.number,
                    peer_authentications=peer_authns,
                    rules={service.fqdn: rule.spec} if rule is not None else {},
                    service_host=service.fqdn,
                )
                if not has_proxy(client):
                    tls_from = "no sidecar"
                elif rule is not None and _rule_sets_tls(rule):
                    tls_from = f"DestinationRule {rule.display_name}"
                else:
                    tls_from = "auto mTLS"
                clients.append(ClientView(client, service, port, tls_from, outcome, sends))
    applied_names = tuple(_display(r.kind, r.namespace, r.name) for r in applied)
    touching = {("PeerAuthentication", name) for name in applied_names}
    touching |= {
        ("AuthorizationPolicy", _display("AuthorizationPolicy", p.namespace, p.name))
        for p in policies
    }
    backing = {(service.name, service.namespace) for service, _ports in services}
    for resource in resources:
        if resource.kind == "DestinationRule":
            if service_of_host(resource.spec.host, resource.namespace) in backing:
                touching.add(("DestinationRule", resource.display_name))
    findings = tuple(
        i for i in analyze_security(resources, topology) if (i.kind, i.name) in touching
    )
    return PodDescription(
        pod=pod,
        identity=pod_identity(pod) if has_proxy(pod) else None,
        services=tuple(services),
        workload_mtls=peer_authns.for_workload(pod),
        port_mtls=tuple((p, peer_authns.for_workload(pod, p)) for p in ports),
        peer_authentications=applied_names,
        policies=policies,
        clients=tuple(clients),
        findings=findings,
    )


def _display(kind: str, namespace: str, name: str) -> str:
    return display_name(kind, namespace, name)


def _rule_sets_tls(rule: Resource) -> bool:
    policy = rule.spec.traffic_policy
    if policy is not None and (
        policy.tls is not None or any(level.tls for level in policy.port_level_settings)
    ):
        return True
    return any(
        s.traffic_policy is not None and s.traffic_policy.tls is not None for s in rule.spec.subsets
    )


SENDS = {
    ClientTLS.ISTIO_MUTUAL: "mTLS",
    ClientTLS.PLAINTEXT: "plaintext",
    ClientTLS.SIMPLE: "TLS (SIMPLE)",
    ClientTLS.MUTUAL: "TLS (MUTUAL)",
}


def _mode_text(effective: EffectiveMtls) -> str:
    where = {
        "default": "default: no PeerAuthentication",
        "mesh": f"mesh-wide, {effective.policy}",
        "namespace": f"namespace-wide, {effective.policy}",
        "workload": f"workload selector, {effective.policy}",
        "port": f"portLevelMtls, {effective.policy}",
    }[effective.scope]
    return f"{effective.mode} ({where})"


def _policy_text(policy: CompiledPolicy) -> str:
    if not policy.rules:
        effect = (
            "no rules: matches nothing; without another ALLOW that matches, denies every request"
            if policy.action == "ALLOW"
            else "no rules: matches nothing"
        )
    else:
        effect = f"{len(policy.rules)} rule(s)"
    dry = ", dry-run (not enforced)" if policy.dry_run else ""
    return f"{policy.namespace}/{policy.name} ({policy.action}, {effect}{dry})"


def render(description: PodDescription, certificate: Mapping[str, Any] | None = None) -> str:
    d = description
    pod = d.pod
    lines = [f"Pod: {pod.name}", f"   Namespace: {pod.namespace}"]
    if d.identity is None:
        lines += [
            '   Proxy: none (sidecar.istio.io/inject: "false"): no identity, plaintext only;',
            "          PeerAuthentication and AuthorizationPolicy do not apply to it",
        ]
    else:
        proxy = "ingress gateway" if pod.proxy == "gateway" else "sidecar"
        lines += [
            f"   Proxy: {proxy}, pod port {pod.port}",
            f"   Service account: {pod.service_account}",
            f"   Identity: {d.identity.uri}",
        ]
        if certificate:
            lines.append(
                f"   Certificate: serial {certificate.get('serial')}, not after "
                f"{certificate.get('not_after')}"
                + (f", issued {certificate['issued_at']}" if certificate.get("issued_at") else "")
            )
        else:
            lines.append("   Certificate: none issued yet (is the lab's mesh CA running?)")
    for service, ports in d.services:
        lines += [RULE, f"Service: {service.name}.{service.namespace}"]
        for port in ports:
            lines.append(
                f"   Port: {port.name} {port.number}/{port.protocol} targets pod port "
                f"{_target(port)}"
            )
    if d.identity is not None:
        lines += [RULE, "Effective PeerAuthentication:"]
        lines.append(f"   Workload mTLS mode: {_mode_text(d.workload_mtls)}")
        for number, effective in d.port_mtls:
            if effective != d.workload_mtls:
                lines.append(f"   Port {number}: {_mode_text(effective)}")
        lines.append("Applied PeerAuthentication:")
        lines.append(f"   {', '.join(d.peer_authentications) or 'none'}")
        lines += [RULE, "AuthorizationPolicies (enforced by this pod's proxy):"]
        if d.policies:
            lines += [f"   {_policy_text(p)}" for p in d.policies]
        else:
            lines.append("   none: every request is allowed")
    if d.clients:
        lines += [RULE, "Clients (what each pod's proxy sends here, and what happens):"]
        for view in d.clients:
            outcome = view.outcome
            if outcome.ok:
                result = "mTLS" if outcome.result == "mutual_tls" else "plaintext"
                verdict = f"OK, {result}"
            elif outcome.status is not None:
                verdict = f"FAILS: {outcome.status} {outcome.response_flag} ({outcome.reason})"
            else:
                verdict = f"FAILS: connection {outcome.result} ({outcome.reason})"
            lines.append(
                f"   {view.client.name} -> :{view.port.number} sends {SENDS[view.sends]} "
                f"[{view.tls_from}]: {verdict}"
            )
    if d.findings:
        lines += [RULE, "Conflicts and warnings:"]
        lines += [f"   {issue}" for issue in d.findings]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the reachability matrix


@dataclass(frozen=True, slots=True)
class Reach:
    """One cell of istio.io's matrix: ``client`` curls ``host:port`` (a Service of ``server``)."""

    client: Pod
    server: Pod
    host: str  # <service>.<namespace>, as the task's curl names it
    port: int
    outcome: Outcome

    @property
    def code(self) -> str:
        """What ``curl -w '%{http_code}'`` prints: 200; 000 for a connection the client sees
        reset or fail itself; its sidecar's 503 (UC/UF) when it has one."""
        if self.outcome.ok:
            return "200"
        return str(self.outcome.status) if self.outcome.status is not None else "000"


def reachability_matrix(
    topology: Topology, resources: Sequence[Resource], client_app: str, server_app: str
) -> list[Reach]:
    """Every pod labelled ``app: client_app`` to every Service backed by a pod labelled
    ``app: server_app`` (istio.io's sleep → httpbin matrix), in topology order."""
    peer_authns = PeerAuthentications(resources)
    clients = [p for p in topology.pods if p.labels.get("app") == client_app]
    servers = [p for p in topology.pods if p.labels.get("app") == server_app]
    cells = []
    for client in clients:
        for server in servers:
            for service, ports in backing_services(server, topology)[:1]:
                port = ports[0]
                rule = _rule_for(resources, client.namespace, service)
                outcome = reachability(
                    client=client,
                    server=server,
                    target_port=_target(port),
                    service_port=port.number,
                    peer_authentications=peer_authns,
                    rules={service.fqdn: rule.spec} if rule is not None else {},
                    service_host=service.fqdn,
                )
                host = f"{service.name}.{service.namespace}"
                cells.append(Reach(client, server, host, port.number, outcome))
    return cells
