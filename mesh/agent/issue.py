"""``python -m mesh.agent.issue``: one certificate for this pod, then exit (the agent's child).

Steps: a new private key (ECDSA P-256, made here, in the pod; it is written only into the
pod's secrets directory), a CSR for the pod's SPIFFE identity into ``$MESH_DIR/csr/<pod>.pem``,
then wait for ``$MESH_DIR/certs/<pod>.pem`` to hold a certificate *for this key*. Before it is
used (``check_issued``), the answer must: be for this key, name the expected identity, chain to
``certs/root-cert.pem`` and be valid now. A refused answer (expired, another CA, another
identity, another key...) is not written; the CA's own refusal (``status/manager.json``) ends
the wait with its reason. Exit 0 with the new ``meta.json`` on stdout, 1 with the reason on
stderr.

``issue(...)`` is the function; time comes from the ``clock`` passed in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mesh.agent import secrets
from mesh.meshdir import MeshDir, atomic_write, read_manager_status
from mesh.security.certs import (
    CertificateError,
    PrivateKey,
    make_csr,
    new_private_key,
    parse_certificates,
    private_key_pem,
    renewal_time,
    verify_peer,
)
from mesh.security.identity import Identity, IdentityError
from mesh.security.knobs import DEFAULT_GRACE_RATIO, KnobError, grace_ratio

DEFAULT_TIMEOUT = 60.0
POLL = 0.1


class IssueError(RuntimeError):
    """No usable certificate: the message says why (the CA's refusal, a check that failed)."""


@dataclass(frozen=True)
class Issued:
    generation: Path
    meta: dict[str, Any]


def check_issued(
    chain_pem: bytes, root_pem: bytes, key: PrivateKey, identity: Identity, now: datetime
) -> Any:
    """The verified leaf of the CA's answer; raises ``CertificateError`` saying which check
    failed (another key, another identity, another CA, expired...)."""
    chain = parse_certificates(chain_pem, "the CA's answer")
    roots = parse_certificates(root_pem, "root-cert.pem")
    if chain[0].public_key() != key.public_key():
        raise CertificateError(
            "malformed", "the certificate is not for this pod's key (an older or foreign one)"
        )
    return verify_peer(chain, roots, now, expected=[identity])


def for_key(chain_pem: bytes, key: PrivateKey) -> bool:
    """Is the first certificate of ``chain_pem`` for ``key`` (False for garbage)?"""
    try:
        return bool(parse_certificates(chain_pem)[0].public_key() == key.public_key())
    except CertificateError:
        return False


def _refusal(mesh: MeshDir, pod: str, since: datetime) -> str | None:
    status = read_manager_status(mesh)
    refused = ((status.ca or {}) if status else {}).get("refused") or {}
    info = refused.get(pod)
    if not isinstance(info, dict):
        return None
    try:
        at = secrets.parse_time(str(info.get("at")))
    except ValueError:
        return None
    # The status has second resolution: a refusal in the CSR's own second counts.
    if at < since.replace(microsecond=0):
        return None
    return str(info.get("reason") or "refused")


def issue(
    mesh: MeshDir,
    pod: str,
    identity: Identity,
    secrets_dir: Path,
    *,
    ratio: float = DEFAULT_GRACE_RATIO,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Issued:
    secrets.prepare(secrets_dir)
    key = new_private_key()
    sent_at = datetime.fromtimestamp(clock(), UTC)
    atomic_write(mesh.csr_file(pod), make_csr(key, identity))
    deadline = clock() + timeout
    last_problem = "no answer"
    seen: tuple[int, int, int] | None = None
    while True:
        path = mesh.cert_file(pod)
        try:
            st = path.stat()
            mark = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            mark = None
        if mark is not None and mark != seen:
            try:
                chain_pem = path.read_bytes()
                root_pem = mesh.root_cert_file.read_bytes() if for_key(chain_pem, key) else None
            except OSError as exc:
                last_problem = f"cannot read the answer: {exc}"  # read again next time
            else:
                seen = mark
                if root_pem is None:
                    # The previous certificate (or garbage): the CA has not answered yet.
                    last_problem = f"{path.name} holds no certificate for this pod's new key"
                else:
                    now = datetime.fromtimestamp(clock(), UTC)
                    try:
                        peer = check_issued(chain_pem, root_pem, key, identity, now)
                    except CertificateError as exc:
                        # A certificate for our key that fails a check will not get better.
                        raise IssueError(f"certificate refused ({exc.reason}): {exc}") from None
                    return _store(secrets_dir, key, chain_pem, root_pem, peer, now, ratio)
        reason = _refusal(mesh, pod, sent_at)
        if reason is not None:
            raise IssueError(f"the mesh CA refused the CSR: {reason}")
        if clock() >= deadline:
            raise IssueError(
                f"no certificate from the mesh CA within {timeout:g} s ({last_problem}; is the "
                "manager running with --ca-dir?)"
            )
        sleep(POLL)


def _store(
    secrets_dir: Path,
    key: PrivateKey,
    chain_pem: bytes,
    root_pem: bytes,
    peer: Any,
    now: datetime,
    ratio: float,
) -> Issued:
    leaf = peer.leaf
    not_after = leaf.not_valid_after_utc
    meta = {
        "identity": peer.identity.uri,
        "not_before": secrets.format_time(leaf.not_valid_before_utc),
        "not_after": secrets.format_time(not_after),
        "renew_at": secrets.format_time(renewal_time(now, not_after, ratio)),
        "serial": f"{leaf.serial_number:x}",
    }
    generation = secrets.write_generation(
        secrets_dir,
        {
            secrets.KEY_FILE: private_key_pem(key),
            secrets.CHAIN_FILE: chain_pem,
            secrets.ROOT_FILE: root_pem,
        },
        meta,
    )
    return Issued(generation, meta)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.agent.issue")
    parser.add_argument("--pod", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--service-account", required=True)
    parser.add_argument("--mesh-dir", default=os.environ.get("MESH_DIR"))
    parser.add_argument("--secrets-dir", default=os.environ.get("MESH_SECRETS_DIR"))
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    if not args.mesh_dir or not args.secrets_dir:
        print("agent: --mesh-dir and --secrets-dir (MESH_DIR, MESH_SECRETS_DIR) are required",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        identity = Identity(args.namespace, args.service_account)
        ratio = grace_ratio(os.environ)
        issued = issue(
            MeshDir(Path(args.mesh_dir)),
            args.pod,
            identity,
            Path(args.secrets_dir),
            ratio=ratio,
            timeout=args.timeout,
        )
    except (IdentityError, KnobError) as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 2
    except (IssueError, OSError) as exc:
        print(f"agent: {args.pod}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(issued.meta, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
