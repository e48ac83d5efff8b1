"""What the proxy process holds for mesh security: ``Guard``, the sidecar's hooks into
``mesh.sidecar.tls`` (the secrets directory), ``mesh.sidecar.secure`` (policy, upstream TLS,
RBAC) and ``mesh.sidecar.acceptor`` (the inbound mTLS listener).

``Guard`` loads those modules only when the proxy has a secrets directory or a snapshot holds
PeerAuthentication / AuthorizationPolicy resources: a plaintext proxy in a mesh without
security policy imports none of them, never maps OpenSSL, and does no per-request work for
security (``Runtime.security`` stays None).

A change of the inbound mode drains the connections it no longer allows (``drain``).

Hooks: ``wants(snapshot)``, ``prepare(table)`` (raises ``ValueError``: the snapshot is refused)
and ``install``, ``bind_inbound``, ``tasks``, ``close``, ``status_fields`` (for
``status/<pod>.json``: identity, inbound mode, secrets error), ``certs`` (admin ``/certs``)
and ``prometheus``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

SECURITY_KINDS = ("PeerAuthentication", "AuthorizationPolicy")


class Guard:
    """One proxy's security wiring."""

    def __init__(
        self,
        options: Any,
        loop: asyncio.AbstractEventLoop,
        runtime: Any,
        on_identity: Callable[[], None],
    ) -> None:
        self.options = options
        self.loop = loop
        self.runtime = runtime
        self.on_identity = on_identity
        self.secrets: Any = None
        self.security: Any = None
        self.acceptor: Any = None
        self.inbound: Any = None  # the inbound listener (its connection tracker)
        self._mode = "PERMISSIVE"
        if options.secrets_dir is not None and not options.plain:
            from mesh.sidecar.tls import Secrets

            self.secrets = Secrets(loop, options.secrets_dir, on_change=self._identity_changed)
            self._ensure()

    def _ensure(self) -> Any:
        if self.security is None:
            from mesh.sidecar.secure import Security, pod_of

            self.security = Security(pod_of(self.options), self.options.inbound_port, self.secrets)
            self.runtime.pool.security = self.security
        return self.security

    def _identity_changed(self) -> None:
        """New credentials (or the first ones): new connections use them; the upstream plan
        changes when the proxy gets its first identity."""
        if self.security is not None:
            self.security.replan()
            self.apply()
        self.on_identity()

    # --- per snapshot ------------------------------------------------------------------

    def wants(self, resources: tuple[Mapping[str, Any], ...]) -> bool:
        if self.options.plain:
            return False  # no proxy in the pod: Istio's policies do not reach it
        return self.security is not None or any(
            isinstance(doc, Mapping) and doc.get("kind") in SECURITY_KINDS for doc in resources
        )

    def prepare(self, table: Any) -> Any:
        return self._ensure().prepare(table)

    def install(self, table: Any, prepared: Any, services: Any = ()) -> None:
        self.security.install(table, prepared, services)
        self.apply()

    def apply(self) -> None:
        """Make the installed policy current: the per-request hooks, and the inbound
        listener's refusal (STRICT without a certificate refuses every connection)."""
        security = self.security
        if security is None:
            return
        active = (
            self.secrets is not None
            or bool(security.policies)
            or bool(security.plan)
            or bool(security.strict_endpoints)
            or security.mode_policy is not None
        )
        self.runtime.security = security if active else None
        inbound = self.inbound
        if inbound is not None:
            mode = str(security.mode)
            inbound.refusing = self.secrets is None and mode == "STRICT"
            if mode != self._mode:
                self._mode = mode
                drain(inbound.conns, mode)

    # --- listeners and tasks ---------------------------------------------------------------

    def bind_inbound(self, listener: Any, handler: Any, sock: socket.socket | None) -> bool:
        """With an identity, the inbound port's connections go through ``Acceptor`` (TLS or
        plaintext per connection); True when it took the port."""
        self.inbound = listener
        self.apply()
        if self.secrets is None:
            return False
        from mesh.sidecar.acceptor import Acceptor

        o = self.options
        if sock is None:
            sock = socket.create_server((o.bind_address, o.inbound_port), backlog=1024)
        self.acceptor = Acceptor(
            self.loop, sock, listener, handler, o.inbound_port, self._ensure(),
            header_timeout=o.header_timeout, tap=tap_recorder(),
        )  # fmt: skip
        self.acceptor.start()
        return True

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        return [self.secrets.watch()] if self.secrets is not None else []

    def close(self) -> None:
        if self.acceptor is not None:
            self.acceptor.close()

    # --- reporting ---------------------------------------------------------------------

    def status_fields(self) -> dict[str, Any]:
        security = self.security
        if security is None:
            return {}
        creds = security.credentials
        mode = str(security.mode) if self.options.inbound_port is not None else None
        if mode == "STRICT" and creds is None:
            mode = "STRICT (no certificate: every inbound connection is refused)"
        return {
            "identity": creds.uri if creds is not None else None,
            "mtls_mode": mode,
            "secrets_error": self.secrets.error if self.secrets is not None else None,
        }

    def certs(self) -> dict[str, Any]:
        """Envoy's ``/certs``, and what this proxy enforces (mTLS mode, policies, upstream
        TLS, counters)."""
        security = self.security
        return security.describe() if security is not None else {"identity": None}

    def prometheus(self) -> list[str]:
        return self.security.prometheus() if self.security is not None else []


def drain(conns: Any, mode: str) -> int:
    """The inbound connections a new mode no longer allows (plaintext under STRICT, mTLS
    under DISABLE) end, as Envoy drains the connections of a replaced filter chain: an idle
    one is closed now, a busy one after its exchange (``Connection: close``). Returns how
    many."""
    ended = 0
    for conn in list(conns):
        plaintext = conn.tls is None
        if not ((mode == "STRICT" and plaintext) or (mode == "DISABLE" and not plaintext)):
            continue
        ended += 1
        active = conn.active
        if active is not None:
            active.keep_alive = False
        elif conn.transport is not None and not conn.closed:
            conn.uncork()
            conn.transport.close()
            conn.closed = True
    return ended


def tap_recorder() -> Any:
    """``mesh.sidecar.tap.record(first_bytes, peer)`` when that module exists (``meshctl
    tap``: the first bytes of each inbound connection, plaintext vs TLS), else None."""
    try:
        from mesh.sidecar import tap  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return getattr(tap, "record", None)
