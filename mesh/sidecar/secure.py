"""Mutual TLS and AuthorizationPolicy on the data plane (the shell around ``mesh.security``).

Primitives:

- ``Security``: per proxy, rebuilt with each applied snapshot (``prepare`` then ``install``):
  the inbound port's effective PeerAuthentication mode (``mesh.security.mtls``), the
  AuthorizationPolicies that select this workload, compiled once (``mesh.security.authz``),
  and the upstream TLS plan — per cluster and endpoint, what ``client_tls`` says the client
  sends (auto mTLS, DestinationRule ``tls``) as an ``UpstreamTLS`` (SNI, expected peer
  identity, pool key; ``sni(port, subset, fqdn)``: Istio's ``outbound_.<port>_.<subset>_.<fqdn>``).
  ``connect`` originates TLS with the newest credentials and checks the
  server's identity (a failure is the caller's 503 UF). Counters for the admin stats.
- ``Security.inbound(ex, path, authority)``: per inbound request: ``ex.mtls`` /
  ``ex.peer_principal``, XFCC (``APPEND_FORWARD``; a client-sent header removed over
  plaintext), then RBAC (deny: ``403 RBAC: access denied``, no response flag; dry-run shadow
  results and AUDIT matches counted and logged).
- ``PeerInfo``: a verified mTLS client (``mesh.sidecar.acceptor`` makes it once per
  connection).

The inbound listener of a proxy with an identity is ``mesh.sidecar.acceptor``. Without a
secrets directory nothing here imports ``ssl``: the proxy then has no identity, speaks
plaintext, and under STRICT refuses every inbound connection (as Envoy without a
certificate).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesh.config import hosts as hostnames
from mesh.security.authz import (
    AuthorizationPolicies,
    CompiledPolicy,
    Decision,
    RequestFacts,
    evaluate,
)
from mesh.security.identity import TRUST_DOMAIN, Identity, IdentityError
from mesh.security.mtls import ClientTLS, MtlsMode, PeerAuthentications, client_tls
from mesh.security.xfcc import (
    SIDECAR_INBOUND_MODE,
    XFCC_HEADER,
    ClientCertDetails,
    forward_client_cert,
)
from mesh.sidecar.http1.client import UpstreamConn
from mesh.topology import Pod, Service

if TYPE_CHECKING:
    from mesh.sidecar.http1.client import Pool
    from mesh.sidecar.http1.exchange import Exchange
    from mesh.sidecar.tls import Credentials, Secrets

_XFCC_BYTES = XFCC_HEADER.encode()


# ---------------------------------------------------------------- upstream


def sni(port: int, subset: str | None, fqdn: str) -> str:
    """Istio's outbound cluster SNI: ``outbound_.9080_.v1_.reviews.default.svc.cluster.local``."""
    return f"outbound_.{port}_.{subset or ''}_.{fqdn}"


@dataclass(frozen=True, slots=True)
class UpstreamTLS:
    """What a client sidecar does on a new connection to one endpoint of one cluster."""

    mode: ClientTLS
    sni: str
    expected: Identity | None  # the server's identity (its service account), if known
    pool_key: str  # the endpoint's pool key with the TLS settings: never mixed with plaintext


class Security:
    """This proxy's view of the mesh's security policy, for the applied snapshot."""

    def __init__(
        self,
        pod: Pod,
        inbound_port: int | None,
        secrets: Secrets | None = None,
        trust_domain: str = TRUST_DOMAIN,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.pod = pod
        self.inbound_port = inbound_port
        self.secrets = secrets
        self.trust_domain = trust_domain
        self.mode = MtlsMode.PERMISSIVE
        self.mode_policy: str | None = None
        self.policies: tuple[CompiledPolicy, ...] = ()
        self.plan: dict[str, dict[str, UpstreamTLS]] = {}
        self.strict_endpoints: frozenset[str] = frozenset()
        self._table: Any = None
        self._services: dict[str, Service] = {}
        self._pas = PeerAuthentications(())
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "ssl_handshake",
                "ssl_connection_error",
                "ssl_fail_verify_cert_expired",
                "ssl_fail_verify_unknown_ca",
                "ssl_fail_verify_san",
                "ssl_fail_verify_no_cert",
                "plaintext_accepted",
                "plaintext_reset",
                "no_identity_reset",
                "upstream_ssl_handshake",
                "upstream_ssl_connection_error",
                "upstream_ssl_fail_verify_san",
                "rbac_allowed",
                "rbac_denied",
                "rbac_shadow_allowed",
                "rbac_shadow_denied",
                "rbac_audited",
            ),
            0,
        )
        self._log = log or (lambda message: print(message, file=sys.stderr))

    @property
    def credentials(self) -> Credentials | None:
        return self.secrets.current if self.secrets is not None else None

    # --- per snapshot ------------------------------------------------------------------

    def prepare(self, table: Any) -> tuple[PeerAuthentications, tuple[CompiledPolicy, ...]]:
        """Compile what ``table`` says (raises ``ValueError`` for a policy that cannot be
        enforced: the snapshot is refused, the last good one stays)."""
        resources = getattr(table, "resources", ())
        pas = PeerAuthentications(resources)
        policies = AuthorizationPolicies(resources).for_workload(self.pod)
        return pas, policies

    def install(
        self,
        table: Any,
        prepared: tuple[PeerAuthentications, tuple[CompiledPolicy, ...]],
        services: Iterable[Service] = (),
    ) -> None:
        """Make ``table``'s policy current. ``services`` (the snapshot's catalog) give the
        container ports PeerAuthentication's ``portLevelMtls`` names: a Service's
        ``targetPort``, which the lab's local processes do not listen on themselves."""
        pas, policies = prepared
        self._table = table
        self._pas = pas
        self._services = {s.fqdn: s for s in services}
        effective = pas.for_workload(self.pod, self._own_container_port())
        self.mode = effective.mode
        self.mode_policy = effective.policy
        self.policies = policies
        self.replan()

    def _own_container_port(self) -> int | None:
        for service in self._services.values():
            if service.name == self.pod.service and service.namespace == self.pod.namespace:
                if service.ports:
                    first = service.ports[0]
                    return first.target_port or first.number
        return self.inbound_port

    def _target_port(self, cluster: Any, endpoint: Any) -> int:
        """The container port behind ``cluster``'s service port (its ``targetPort``)."""
        service = self._services.get(cluster.host)
        found = service.port(cluster.port) if service is not None else None
        if found is None:
            return int(endpoint.port)
        return found.target_port or found.number

    def replan(self) -> None:
        """The upstream TLS plan for the installed table and the current credentials (again
        when the credentials appear or go)."""
        table = self._table
        plan: dict[str, dict[str, UpstreamTLS]] = {}
        strict: set[str] = set()
        if table is None:
            self.plan = plan
            return
        have_identity = self.credentials is not None
        pas = self._pas
        for name, cluster in table.clusters.items():
            per: dict[str, UpstreamTLS] = {}
            service = hostnames.service_of(cluster.host)
            for endpoint in cluster.endpoints:
                server = endpoint.as_pod()
                target = self._target_port(cluster, endpoint)
                if server.proxy != "none":
                    if pas.for_workload(server, target).mode is MtlsMode.STRICT:
                        strict.add(endpoint.key)
                mode = client_tls(
                    server=server,
                    target_port=target,
                    service_namespace=service[1] if service is not None else endpoint.namespace,
                    service_port=cluster.port,
                    peer_authentications=pas,
                    rule=cluster.rule,
                    subset=cluster.subset,
                )
                if mode is ClientTLS.PLAINTEXT:
                    continue
                if mode is ClientTLS.ISTIO_MUTUAL and not have_identity:
                    continue  # no certificate yet: plaintext, as the contract says
                # (SIMPLE/MUTUAL need the DestinationRule's own certificates, files the
                # lab's pods do not have: ``client_context`` gives none and the connection
                # fails, as Envoy's cluster without its secret does: 503 UF.)
                expected = None
                if mode is ClientTLS.ISTIO_MUTUAL and endpoint.service_account:
                    try:
                        expected = Identity(
                            endpoint.namespace, endpoint.service_account, self.trust_domain
                        )
                    except IdentityError:
                        expected = None
                name_sni = sni(cluster.port, cluster.subset, cluster.host)
                per[endpoint.key] = UpstreamTLS(
                    mode, name_sni, expected, f"{endpoint.key}|{mode}|{name_sni}"
                )
            if per:
                plan[name] = per
        self.plan = plan
        self.strict_endpoints = frozenset(strict)

    def upstream(self, cluster_name: str, endpoint_key: str) -> UpstreamTLS | None:
        per = self.plan.get(cluster_name)
        return per.get(endpoint_key) if per is not None else None

    def client_context(self, tls: UpstreamTLS) -> Any:
        """The SSLContext for a new connection (the newest credentials: a rotation applies
        to new connections only). None: this mode cannot be originated here."""
        creds = self.credentials
        if tls.mode is ClientTLS.ISTIO_MUTUAL and creds is not None:
            return creds.client
        return None

    def check_server(self, tls: UpstreamTLS, transport: asyncio.BaseTransport) -> bool:
        """After the client handshake: the server is the identity the endpoint should have."""
        from mesh.sidecar.tls import check_peer

        self.stats["upstream_ssl_handshake"] += 1
        try:
            check_peer(transport.get_extra_info("peercert"), self.trust_domain, tls.expected)
        except IdentityError as exc:
            self.stats["upstream_ssl_fail_verify_san"] += 1
            self._log(f"upstream {tls.sni}: refused: {exc}")
            return False
        return True

    async def connect(
        self, pool: Pool, key: str, address: str, port: int, timeout: float | None,
        tls: UpstreamTLS,
    ) -> UpstreamConn | None:  # fmt: skip
        """A new TLS connection for ``pool``, or None (Envoy's 503 UF): no credentials for
        this mode, a failed handshake, a server that is not who the endpoint says."""
        context = self.client_context(tls)
        if context is None:
            return None
        try:
            coro = pool.loop.create_connection(
                lambda: UpstreamConn(pool, key), address, port, ssl=context,
                server_hostname=tls.sni, ssl_handshake_timeout=timeout or 10.0,
            )  # fmt: skip
            if timeout is not None:
                transport, proto = await asyncio.wait_for(coro, timeout)
            else:
                transport, proto = await coro
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            self.upstream_failed(tls, exc)
            return None
        if not self.check_server(tls, transport):
            transport.abort()
            return None
        conn: UpstreamConn = proto
        pool.active.add(conn)
        return conn

    def upstream_failed(self, tls: UpstreamTLS, exc: BaseException) -> None:
        self.stats["upstream_ssl_connection_error"] += 1
        self._log(f"upstream {tls.sni}: TLS handshake failed: {exc}")

    # --- inbound ---------------------------------------------------------------------

    def refuses_plaintext(self) -> bool:
        return self.mode is MtlsMode.STRICT

    def verify_client(self, ssl_object: Any) -> PeerInfo:
        """The peer of a terminated TLS connection; raises ``IdentityError`` (counted)."""
        from mesh.security.tlsinfo import client_cert_details
        from mesh.sidecar.tls import check_peer

        cert = ssl_object.getpeercert() if ssl_object is not None else None
        try:
            identity = check_peer(cert, self.trust_domain)
        except IdentityError:
            self.stats["ssl_fail_verify_san"] += 1
            raise
        self.stats["ssl_handshake"] += 1
        creds = self.credentials
        own = (creds.uri,) if creds is not None else ()
        der = ssl_object.getpeercert(binary_form=True) or b""
        details = client_cert_details(own, cert or {}, der)
        return PeerInfo(identity.principal, details, getattr(ssl_object, "mesh_sni", None))

    def handshake_failed(self, exc: BaseException) -> None:
        text = str(exc).lower()
        if "expired" in text:
            key = "ssl_fail_verify_cert_expired"
        elif (
            "unknown ca" in text
            or "unable to get local issuer" in text
            or "self-signed" in text
            or "self signed" in text
        ):
            key = "ssl_fail_verify_unknown_ca"
        elif "did not return a certificate" in text or "certificate required" in text:
            key = "ssl_fail_verify_no_cert"
        else:
            key = "ssl_connection_error"
        self.stats[key] += 1
        if key != "ssl_connection_error":
            self.stats["ssl_connection_error"] += 1
        self._log(f"inbound TLS handshake refused ({key}): {exc}")

    # --- authorization ----------------------------------------------------------------

    def authorize(self, facts: RequestFacts) -> Decision:
        decision = evaluate(self.policies, facts)
        stats = self.stats
        stats["rbac_allowed" if decision.allowed else "rbac_denied"] += 1
        if decision.audited:
            stats["rbac_audited"] += 1
        for shadow in decision.dry_run:
            stats["rbac_shadow_allowed" if shadow.allowed else "rbac_shadow_denied"] += 1
        return decision

    # --- per inbound request -------------------------------------------------------------

    def inbound(self, ex: Exchange, path: str, authority: str) -> Decision | None:
        """mTLS facts, XFCC and RBAC for one inbound request. Returns the denial, if any
        (the caller answers it: ``403 RBAC: access denied``)."""
        conn: Any = ex.conn
        peer: PeerInfo | None = conn.tls
        if peer is not None:
            ex.mtls = True
            ex.peer_principal = peer.principal
        incoming = ex.hdict.get(XFCC_HEADER)
        if incoming is not None:
            ex.headers = [(n, v) for n, v in ex.headers if n != _XFCC_BYTES]
        if peer is not None:
            value = forward_client_cert(SIDECAR_INBOUND_MODE, incoming, peer.details)
            if value is not None:
                ex.hdict[XFCC_HEADER] = value
                ex.headers.append((_XFCC_BYTES, value.encode("latin-1")))
        elif incoming is not None:
            del ex.hdict[XFCC_HEADER]  # no client certificate: a client cannot forge one
        if not self.policies:
            return None
        facts = RequestFacts(
            method=ex.method,
            path=path,
            host=authority,
            headers=ex.hdict,
            source_principal=peer.principal if peer is not None else None,
            source_ip=conn.peer,
            destination_ip=_local_ip(conn),
            destination_port=self.inbound_port or 0,
            sni=peer.sni if peer is not None else None,
        )
        decision = self.authorize(facts)
        if decision.dry_run or decision.audited:
            shadow = ", ".join(
                f"{s.action}:{s.engine_result}[{s.policy or 'none'}]" for s in decision.dry_run
            )
            self._log(
                f"rbac {ex.method} {path} from {facts.source_principal or conn.peer}: "
                f"{'allowed' if decision.allowed else 'denied'}"
                + (f" audit[{decision.audit_policy}]" if decision.audited else "")
                + (f" shadow {shadow}" if shadow else "")
            )
        return None if decision.allowed else decision

    def edge(self, ex: Exchange, path: str, host: str, port: int | None) -> Decision | None:
        """RBAC at the ingress gateway: its clients are outside the mesh (no principal)."""
        conn: Any = ex.conn
        facts = RequestFacts(
            method=ex.method,
            path=path,
            host=ex.authority or host,
            headers=ex.hdict,
            source_ip=conn.peer,
            destination_ip=_local_ip(conn),
            destination_port=port or 0,
        )
        decision = self.authorize(facts)
        return None if decision.allowed else decision

    # --- reporting ----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "identity": self.credentials.describe() if self.credentials is not None else None,
            "secrets": self.secrets.status() if self.secrets is not None else None,
            "inbound_mode": str(self.mode),
            "inbound_mode_policy": self.mode_policy,
            "authorization_policies": [f"{p.namespace}/{p.name}" for p in self.policies],
            "upstream_tls": {
                cluster: {key: f"{tls.mode} {tls.sni}" for key, tls in per.items()}
                for cluster, per in sorted(self.plan.items())
            },
            "stats": dict(self.stats),
        }

    def prometheus(self) -> list[str]:
        lines = ["# TYPE mesh_security_total counter"]
        for name, value in sorted(self.stats.items()):
            lines.append(f'mesh_security_total{{stat="{name}"}} {value}')
        lines.append("# TYPE mesh_workload_certificate_expiry_seconds gauge")
        creds = self.credentials
        if creds is not None:
            lines.append(
                f'mesh_workload_certificate_expiry_seconds{{identity="{creds.uri}"}} '
                f"{creds.not_after:.0f}"
            )
        return lines


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A verified mTLS client, once per connection."""

    principal: str  # cluster.local/ns/<ns>/sa/<sa>
    details: ClientCertDetails  # what XFCC says of this hop (By, Hash, Subject, URI)
    sni: str | None = None


def _local_ip(conn: Any) -> str:
    transport = conn.transport
    if transport is None:
        return ""
    local = transport.get_extra_info("sockname")
    return local[0] if isinstance(local, tuple) else ""


def pod_of(options: Any) -> Pod:
    """This proxy's workload as the security core reads pods."""
    return Pod(
        options.pod,
        dict(options.labels),
        namespace=options.namespace,
        service_account=options.service_account,
        service_name=options.service_name,
        proxy="gateway" if options.gateway else "none" if options.plain else "sidecar",
        port=options.inbound_port or 0,
    )
