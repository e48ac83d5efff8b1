"""``python -m mesh.agent --pod P --namespace NS --service-account SA``: keep the pod's
certificate fresh (the resident loop; ``cryptography`` is loaded only by its short-lived
``mesh.agent.issue`` children, see ``mesh.agent``).

At start the loop reuses the secrets directory's ``current`` generation when it is for this
identity and not yet due (a restarted agent does not re-key), else issues at once; then it
sleeps until ``renew_at`` and issues again. A failed issue is retried after 1, 2, 4... s (at
most 30 s) and logged with its reason. ``--once``: issue (or reuse) once, then exit 0/1.

``next_action(meta, identity, now)`` is the pure decision: when to issue next.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mesh.agent import secrets
from mesh.security.identity import Identity, IdentityError

MAX_BACKOFF = 30.0
ISSUE_TIMEOUT = 60.0


def next_action(meta: Mapping[str, Any] | None, identity_uri: str, now: datetime) -> float:
    """Seconds until the next issue is due (0: now) for the current ``meta.json``."""
    if not meta or meta.get("identity") != identity_uri:
        return 0.0
    try:
        renew_at = secrets.parse_time(str(meta.get("renew_at")))
        not_after = secrets.parse_time(str(meta.get("not_after")))
    except ValueError:
        return 0.0
    if now >= not_after:
        return 0.0
    return max(0.0, (renew_at - now).total_seconds())


def _log(pod: str, message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} agent {pod}: {message}", file=sys.stderr, flush=True)


def run_issue(args: argparse.Namespace) -> tuple[bool, str]:
    """One ``mesh.agent.issue`` child: (succeeded, its meta line or its reason)."""
    argv = [
        sys.executable, "-m", "mesh.agent.issue",
        "--pod", args.pod, "--namespace", args.namespace,
        "--service-account", args.service_account,
        "--mesh-dir", args.mesh_dir, "--secrets-dir", args.secrets_dir,
        "--timeout", f"{args.timeout:g}",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=args.timeout + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return False, f"the issue did not finish in {args.timeout + 30:g} s"
    if done.returncode == 0:
        return True, done.stdout.strip()
    return False, (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.agent", description=__doc__)
    parser.add_argument("--pod", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--service-account", required=True)
    parser.add_argument("--mesh-dir", default=os.environ.get("MESH_DIR"))
    parser.add_argument("--secrets-dir", default=os.environ.get("MESH_SECRETS_DIR"))
    parser.add_argument("--timeout", type=float, default=ISSUE_TIMEOUT)
    parser.add_argument("--once", action="store_true", help="issue (or reuse) once, then exit")
    args = parser.parse_args(argv)
    if not args.mesh_dir or not args.secrets_dir:
        _log(args.pod, "--mesh-dir and --secrets-dir (MESH_DIR, MESH_SECRETS_DIR) are required")
        return 2
    try:
        identity_uri = Identity(args.namespace, args.service_account).uri
    except IdentityError as exc:
        _log(args.pod, str(exc))
        return 2
    directory = Path(args.secrets_dir)
    backoff = 1.0
    while True:
        wait = next_action(secrets.read_meta(directory), identity_uri, datetime.now(UTC))
        if wait > 0:
            if args.once:
                return 0
            time.sleep(min(wait, 3600.0))  # re-read meta.json at least hourly
            continue
        started = time.monotonic()
        ok, said = run_issue(args)
        if ok:
            backoff = 1.0
            _log(
                args.pod,
                f"certificate for {identity_uri} in {time.monotonic() - started:.2f} s: {said}",
            )
            if args.once:
                return 0
            continue
        _log(args.pod, f"no certificate ({said}); retrying in {backoff:g} s")
        if args.once:
            return 1
        time.sleep(backoff)
        backoff = min(MAX_BACKOFF, backoff * 2)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
