"""The pod's workload certificate on the data plane (Envoy's SDS role): the secrets directory
the agent writes, loaded into the TLS contexts of new connections.

Primitives:

- ``load_generation(dir, now)`` → ``Credentials``: one generation of ``MESH_SECRETS_DIR``
  (``key.pem``, ``cert-chain.pem``, ``root-cert.pem``, ``meta.json``, the contract in
  ``/work/wt/briefs/mtls-contract.md`` and DESIGN.md "Security") as a server context (TLS 1.2+,
  client certificate required and verified against the mesh root, ALPN as Istio's inbound)
  and a client context (the workload certificate presented, the server verified against the
  root, ALPN ``istio-peer-exchange``, ``istio``); refused with ``SecretsError`` when a file is
  missing or unparsable, the key does not match the certificate, the certificate does not
  carry ``meta.json``'s identity, or it has expired.
- ``Secrets``: the watcher (inotify on the directory plus a poll, as for the snapshot): the
  ``current`` symlink's generation, swapped in for NEW connections only (a connection keeps the
  context it was made with: a rotation fails no request); a refused generation keeps the last
  good one and says why (``status()``).

``ssl`` is imported here, and this module is imported only when a secrets directory is
configured: a proxy without one keeps ``memory_budget``'s OpenSSL stub (no libssl/libcrypto
mapped). Certificates are read with ``ssl`` alone (``mesh.security.tlsinfo``), never with
``cryptography``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.security.identity import Identity, IdentityError, parse_uri
from mesh.security.tlsinfo import uri_sans

KEY_FILE = "key.pem"
CERT_CHAIN_FILE = "cert-chain.pem"
ROOT_CERT_FILE = "root-cert.pem"
META_FILE = "meta.json"
CURRENT = "current"
POLL_INTERVAL = 1.0

# Istio's ALPN for mesh mTLS: the client offers these two (the peer-metadata exchange); the
# inbound listener also takes plain HTTP/1.1 offers.
CLIENT_ALPN = ("istio-peer-exchange", "istio")
SERVER_ALPN = ("istio-peer-exchange", "istio", "http/1.1")


class SecretsError(ValueError):
    """A generation that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """One loaded generation: the contexts new connections are made with."""

    generation: str  # the directory's name (``..gen-<n>``)
    identity: Identity
    not_after: float  # epoch seconds
    serial: str
    server: ssl.SSLContext
    client: ssl.SSLContext

    @property
    def uri(self) -> str:
        return self.identity.uri

    def describe(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "identity": self.uri,
            "serial": self.serial,
            "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.not_after)),
        }


def _decode_cert(path: Path) -> Mapping[str, Any]:
    """The first certificate of a PEM file as ``getpeercert()`` reports one (OpenSSL's
    decoder, through the ``ssl`` module's own helper: no ``cryptography``)."""
    decode = getattr(ssl._ssl, "_test_decode_cert", None)  # type: ignore[attr-defined]
    if decode is None:  # pragma: no cover - every CPython since 2.7 has it
        return {}
    try:
        decoded: Mapping[str, Any] = decode(str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise SecretsError(f"{path.name} is not a PEM certificate: {exc}") from None
    return decoded


def _contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    chain, key, root = directory / CERT_CHAIN_FILE, directory / KEY_FILE, directory / ROOT_CERT_FILE
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for ctx, alpn in ((server, SERVER_ALPN), (client, CLIENT_ALPN)):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # The peer is named by its SPIFFE URI SAN, checked after the handshake
        # (``check_peer``): a DNS host name check means nothing in the mesh.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_cert_chain(chain, key)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
                raise SecretsError(f"{KEY_FILE} is not the key of {CERT_CHAIN_FILE}") from None
            raise SecretsError(f"{CERT_CHAIN_FILE} / {KEY_FILE} unusable: {exc}") from None
        except OSError as exc:
            raise SecretsError(f"cannot read {CERT_CHAIN_FILE} / {KEY_FILE}: {exc}") from None
        try:
            ctx.load_verify_locations(cafile=str(root))
        except (ssl.SSLError, OSError) as exc:
            raise SecretsError(f"{ROOT_CERT_FILE} unusable: {exc}") from None
        ctx.set_alpn_protocols(list(alpn))
    server.sni_callback = _remember_sni
    return server, client


def _remember_sni(ssl_object: Any, name: str | None, context: ssl.SSLContext) -> None:
    """The SNI the client sent (AuthorizationPolicy's ``connection.sni``), kept on the
    connection's SSLObject for ``mesh.sidecar.secure``."""
    try:
        ssl_object.mesh_sni = name
    except AttributeError:
        pass


def load_generation(directory: Path, now: float) -> Credentials:
    """Load and check one generation directory; raises ``SecretsError``."""
    for name in (KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE, META_FILE):
        path = directory / name
        if not path.is_file() or path.stat().st_size == 0:
            raise SecretsError(f"{name} is missing or empty (a half-written generation?)")
    try:
        meta = json.loads((directory / META_FILE).read_bytes())
        identity = parse_uri(str(meta["identity"]))
    except (ValueError, KeyError, TypeError, OSError, IdentityError) as exc:
        raise SecretsError(f"{META_FILE} unreadable: {exc}") from None
    server, client = _contexts(directory)
    leaf = _decode_cert(directory / CERT_CHAIN_FILE)
    uris = uri_sans(leaf)
    if leaf and identity.uri not in uris:
        raise SecretsError(
            f"{CERT_CHAIN_FILE} is for {', '.join(uris) or 'no SPIFFE identity'}, "
            f"{META_FILE} says {identity.uri}"
        )
    not_after = ssl.cert_time_to_seconds(leaf["notAfter"]) if "notAfter" in leaf else now + 1
    if not_after <= now:
        raise SecretsError(f"{CERT_CHAIN_FILE} expired at {leaf['notAfter']}")
    serial = str(leaf.get("serialNumber") or meta.get("serial") or "").lower()
    return Credentials(directory.name, identity, not_after, serial, server, client)


def check_peer(
    cert: Mapping[str, Any] | None, trust_domain: str, expected: Identity | None = None
) -> Identity:
    """The verified peer's identity (OpenSSL checked chain and dates): one SPIFFE URI SAN in
    the mesh's trust domain, and ``expected`` when given (a client checks its server's, as
    Istio's ``subjectAltNames`` from the endpoint's service account). Raises ``IdentityError``."""
    if not cert:
        raise IdentityError("the peer presented no certificate")
    uris = [u for u in uri_sans(cert) if u.startswith("spiffe://")]
    if len(uris) != 1:
        raise IdentityError(
            f"peer certificate has no single SPIFFE URI SAN (URI SANs: {', '.join(uri_sans(cert)) or 'none'})"
        )
    identity = parse_uri(uris[0])
    if identity.trust_domain != trust_domain:
        raise IdentityError(f"peer {identity.uri} is not in trust domain {trust_domain}")
    if expected is not None and identity != expected:
        raise IdentityError(f"peer is {identity.uri}, expected {expected.uri}")
    return identity


class Secrets:
    """``MESH_SECRETS_DIR`` watched: ``current`` is the credentials new connections use."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        directory: Path,
        on_change: Callable[[], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.loop = loop
        self.directory = directory
        self.on_change = on_change
        self.current: Credentials | None = None
        self.error: str | None = None
        self.refused = 0
        self.rotations = 0
        self._seen: tuple[str, int] | None = None
        self._log = log or (lambda message: print(message, file=sys.stderr))

    def reload(self) -> bool:
        """Load ``current`` if it points elsewhere (or its directory changed); True when new
        credentials were installed."""
        link = self.directory / CURRENT
        try:
            target = link.resolve(strict=True)
            sig = (str(target), target.stat().st_mtime_ns)
        except (FileNotFoundError, NotADirectoryError):
            return False  # no identity yet: the agent has not written one
        except OSError as exc:
            self._refuse(None, f"cannot read {link}: {exc}")
            return False
        if sig == self._seen:
            return False
        self._seen = sig
        try:
            loaded = load_generation(target, time.time())
        except SecretsError as exc:
            self._refuse(target.name, str(exc))
            return False
        if self.current is not None:
            self.rotations += 1
        self.current = loaded
        self.error = None
        if self.on_change is not None:
            self.on_change()
        return True

    def _refuse(self, generation: str | None, message: str) -> None:
        kept = f"; keeping {self.current.generation}" if self.current is not None else ""
        self.error = f"secrets {generation or ''} refused: {message}{kept}".replace("  ", " ")
        self.refused += 1
        self._log(self.error)

    async def watch(self) -> None:
        """inotify on the directory (the agent swaps ``current`` with a rename), plus a poll
        every second as a safety net."""
        from mesh.sidecar.inotify import watch_dir

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.reload()
        watch = watch_dir(self.loop, self.directory, lambda: None if self.reload() else None)
        try:
            while True:
                await asyncio.sleep(POLL_INTERVAL)
                self.reload()
        finally:
            if watch is not None:
                watch.close()

    def status(self) -> dict[str, Any]:
        """For ``status/<pod>.json`` and the admin endpoint."""
        current = self.current
        return {
            "dir": str(self.directory),
            "current": current.describe() if current is not None else None,
            "error": self.error,
            "refused": self.refused,
            "rotations": self.rotations,
        }
