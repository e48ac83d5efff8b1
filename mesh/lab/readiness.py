"""Flip a pod's readiness for the readiness demo: ``python -m mesh.lab.readiness false``.

Runs inside a pod's container (``make readiness-fail`` / ``make readiness-pass``) and asks
the app, on loopback, to pass or fail its ``/health`` readiness endpoint. The sidecar's
prober then sees the change within one ``periodSeconds`` and the manager drops (or returns)
the pod from its subsets.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from mesh.lab.pod import APP_PORT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.lab.readiness")
    parser.add_argument("ready", choices=["true", "false"], help="pass or fail /health")
    parser.add_argument("--app-port", type=int, default=APP_PORT)
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{args.app_port}/health/toggle?ready={args.ready}"
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code  # an unready app answers 503: the toggle still happened
    except OSError as exc:
        print(f"cannot reach the app on port {args.app_port}: {exc}", file=sys.stderr)
        return 1
    state = "ready" if status == 200 else "not ready"
    print(f"app on port {args.app_port} is now {state} (/health answers {status})")
    return 0 if (status == 200) == (args.ready == "true") else 1


if __name__ == "__main__":
    sys.exit(main())
