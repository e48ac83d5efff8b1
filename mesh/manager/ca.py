"""The manager as the mesh CA (istiod's Citadel role): the shell around ``mesh.security.ca``.

Primitives:

- ``CAShell.load()``: the CA from ``ca_dir`` (where only the manager reads it: compose mounts a
  volume into the manager alone, the local lab uses a 0700 directory outside $MESH_DIR), or
  from a supplied Istio ``cacerts`` directory, or a new root created and kept in ``ca_dir``
  (files 0600) on first start. A corrupted or inconsistent CA file is reported (the file and
  what is wrong, in ``status/manager.json``) and never overwritten: the manager keeps the CA
  it loaded last (none at a first start) and the certificates it already issued stay in
  ``certs/``.
- ``CAShell.process(records)``: one pass over ``$MESH_DIR/csr/<pod>.pem``: each new or
  changed CSR is signed for the identity the pod is entitled to — its namespace and service
  account in the topology (the manifests, the lab's API server), else in its own registry
  record — and the chain written to ``certs/<pod>.pem``, the root to ``certs/root-cert.pem``.
  A CSR that asks for another identity, or is garbage, is refused; the reason is kept per
  pod for ``status/manager.json`` (``meshctl status`` and the agent read it).
- ``CAShell.status()``: the ``ca`` object of ``status/manager.json``.

Unlike Istio, the CSR channel is a shared directory without authentication: the lab decides
what a pod may be from the pod *name* of the file, so a pod that writes a CSR under another
pod's name would get that pod's identity. The lab's threat model is a trainee's mistake (a
CSR for the wrong identity is refused and shown), not a hostile pod.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mesh.meshdir import PEM_SUFFIX, MeshDir, RegistryRecord, atomic_write
from mesh.topology import Topology

# The newest refusals and issues kept in the status (a lab has tens of pods).
MAX_LISTED = 100


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CAShell:
    mesh: MeshDir
    ca_dir: Path
    topology: Topology
    ttl: timedelta
    cacerts: Path | None = None
    clock: Callable[[], float] = time.time
    say: Callable[[str], None] = print
    ca: Any = None  # mesh.security.ca.MeshCA once loaded (imported lazily: cryptography)
    source: str = ""
    loaded_at: float | None = None
    error: str | None = None
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ca_signature: tuple[Any, ...] | None = None
    _seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    # -- the CA itself -----------------------------------------------------------------------

    @property
    def _ca_files_dir(self) -> Path:
        return self.cacerts if self.cacerts is not None else self.ca_dir

    def _signature(self) -> tuple[Any, ...]:
        from mesh.security.ca import CA_FILES

        found: list[tuple[Any, ...]] = []
        for name in CA_FILES:
            try:
                st = (self._ca_files_dir / name).stat()
            except OSError:
                found.append((name, None))
                continue
            found.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
        return tuple(found)

    def load(self) -> None:
        """Load (or create) the CA; when its files are unusable keep the last good one."""
        from mesh.security.ca import CA_FILES, CA_KEY_FILE, CAError, MeshCA

        now = datetime.fromtimestamp(self.clock(), UTC)
        self._ca_signature = self._signature()
        directory = self._ca_files_dir
        present = {name: _read(directory / name) for name in CA_FILES}
        if self.cacerts is None and not any(present.values()):
            self._prepare_ca_dir()
            ca = MeshCA.create(now)
            for name, data in ca.files().items():
                atomic_write(self.ca_dir / name, data, mode=0o600)
            self._ca_signature = self._signature()
            self._use(ca, f"created a new root in {self.ca_dir}", now)
            return
        try:
            ca = MeshCA.load(present, now)
        except CAError as exc:
            keep = (
                f"keeping the CA loaded at {_utc(datetime.fromtimestamp(self.loaded_at, UTC))}"
                if self.ca is not None and self.loaded_at is not None
                else "no CA: CSRs are not signed; certificates already issued stay in certs/"
            )
            message = f"CA files in {directory} unusable: {exc}; {keep}"
            if message != self.error:
                self.say(message)
            self.error = message
            return
        if self.cacerts is None:
            # The key must stay the manager's alone (a copy restored with a loose mode...).
            path = self.ca_dir / CA_KEY_FILE
            try:
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
            except OSError:
                pass
        self._use(ca, f"loaded from {directory}", now)

    def _prepare_ca_dir(self) -> None:
        self.ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            if self.ca_dir.stat().st_mode & 0o077:
                os.chmod(self.ca_dir, 0o700)
        except OSError:
            pass

    def _use(self, ca: Any, how: str, now: datetime) -> None:
        changed = (
            self.ca is None or ca.root != self.ca.root or ca.signing_cert != self.ca.signing_cert
        )
        self.ca = ca
        self.source = how
        self.loaded_at = now.timestamp()
        self.error = None
        root = ca.root
        self.say(
            f"mesh CA {how}: root serial {root.serial_number:x}, valid until "
            f"{_utc(root.not_valid_after_utc)}"
        )
        self.mesh.certs_dir.mkdir(parents=True, exist_ok=True)
        self.mesh.csr_dir.mkdir(parents=True, exist_ok=True)
        if _read(self.mesh.root_cert_file) != ca.root_pem:
            atomic_write(self.mesh.root_cert_file, ca.root_pem)
        if changed:
            self._seen.clear()  # a new CA signs every CSR again

    def check_reload(self) -> None:
        """Reload when the CA files changed on disk (a trainee rotating ``cacerts``)."""
        if self._signature() != self._ca_signature:
            self.load()

    # -- signing -----------------------------------------------------------------------------

    def entitled(self, pod: str, records: Iterable[RegistryRecord]) -> tuple[str, str] | None:
        """(namespace, service account) the pod may have: the topology's, else its record's."""
        known = self.topology.pod(pod)
        if known is not None:
            return known.namespace, known.service_account
        for record in records:
            if record.pod == pod:
                return record.namespace, record.service_account
        return None

    def process(self, records: Iterable[RegistryRecord] = ()) -> list[str]:
        """Sign every new or changed CSR; returns the pods answered (issued or refused)."""
        records = list(records)
        answered: list[str] = []
        try:
            names = sorted(os.listdir(self.mesh.csr_dir))
        except OSError:
            return answered
        for name in names:
            if name.startswith(".") or not name.endswith(PEM_SUFFIX):
                continue
            pod = name[: -len(PEM_SUFFIX)]
            path = self.mesh.csr_dir / name
            try:
                st = path.stat()
            except OSError:
                continue
            mark = (st.st_size, st.st_mtime_ns, st.st_ino)
            if self._seen.get(pod) == mark:
                continue
            data = _read(path)
            if data is None:
                continue
            if self.ca is None:
                # Not marked as seen: signed as soon as a CA is loaded again.
                self._refuse(pod, f"no usable CA ({self.error or 'not loaded'})")
                continue
            self._seen[pod] = mark
            self._sign(pod, data, records)
            answered.append(pod)
        return answered

    def _sign(self, pod: str, csr: bytes, records: list[RegistryRecord]) -> None:
        from mesh.security.ca import CAError
        from mesh.security.identity import Identity, IdentityError

        now = datetime.fromtimestamp(self.clock(), UTC)
        who = self.entitled(pod, records)
        if who is None:
            self._refuse(pod, f"CSR refused: no pod {pod!r} in the topology or the registry")
            return
        try:
            identity = Identity(*who)
            issued = self.ca.sign(csr, identity, now, self.ttl)
        except (CAError, IdentityError) as exc:
            self._refuse(pod, str(exc))
            return
        from mesh.security.certs import parse_certificates

        leaf = parse_certificates(issued.cert_chain_pem)[0]
        atomic_write(self.mesh.cert_file(pod), issued.cert_chain_pem)
        self.refused.pop(pod, None)
        self.issued[pod] = {
            "identity": identity.uri,
            "serial": f"{leaf.serial_number:x}",
            "not_after": _utc(issued.not_after),
            "issued_at": _utc(now),
        }
        _trim(self.issued)
        self.say(
            f"issued {identity.uri} to {pod} (serial {leaf.serial_number:x}, until "
            f"{_utc(issued.not_after)})"
        )

    def _refuse(self, pod: str, reason: str) -> None:
        previous = self.refused.get(pod, {}).get("reason")
        self.refused[pod] = {
            "reason": reason,
            "at": _utc(datetime.fromtimestamp(self.clock(), UTC)),
        }
        _trim(self.refused)
        if previous != reason:
            self.say(f"{pod}: {reason}")

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        root: dict[str, Any] | None = None
        if self.ca is not None:
            cert = self.ca.root
            root = {
                "serial": f"{cert.serial_number:x}",
                "subject": cert.subject.rfc4514_string(),
                "not_after": _utc(cert.not_valid_after_utc),
            }
        return {
            "root": root,
            "source": self.source,
            "error": self.error,
            "ttl_seconds": self.ttl.total_seconds(),
            "issued": dict(self.issued),
            "refused": dict(self.refused),
        }


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _trim(listed: dict[str, Any]) -> None:
    while len(listed) > MAX_LISTED:
        listed.pop(next(iter(listed)))


def ca_status_lines(ca: Mapping[str, Any] | None) -> list[str]:
    """What ``meshctl status`` prints about the CA (from ``status/manager.json``)."""
    if not ca:
        return ["mesh CA: off (the manager runs without --ca-dir)"]
    lines = []
    root = ca.get("root")
    if isinstance(root, Mapping):
        lines.append(
            f"mesh CA: root serial {root.get('serial')}, until {root.get('not_after')} "
            f"({ca.get('source') or 'loaded'}); {len(ca.get('issued') or {})} workload "
            f"certificate(s) issued"
        )
    else:
        lines.append("mesh CA: NO CA LOADED")
    if ca.get("error"):
        lines.append(f"  CA error: {ca['error']}")
    refused = ca.get("refused")
    if isinstance(refused, Mapping):
        for pod, info in sorted(refused.items()):
            reason = info.get("reason") if isinstance(info, Mapping) else info
            lines.append(f"  refused {pod}: {reason}")
    return lines
