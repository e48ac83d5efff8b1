"""``python -m services.serve PROGRAM``: run one lab program in a real cluster's pod.

What the lab's image runs when exported with ``meshlab export kube --image ...``: the app on
``0.0.0.0:$PORT`` (default 9080) under gunicorn, with no proxy settings (Istio's sidecar
intercepts with iptables there); ``sleep`` and ``fortio`` just wait.
"""

from __future__ import annotations

import os
import sys

CLIENTS = ("sleep", "fortio")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.serve PROGRAM", file=sys.stderr)
        return 2
    program = args[0]
    if program in CLIENTS:
        from services.sleep import main as sleep

        return sleep()
    os.environ.setdefault("SERVICE_NAME", program)
    os.environ.setdefault("BIND", f"0.0.0.0:{os.environ.get('PORT', '9080')}")
    command = [
        sys.executable, "-m", "gunicorn", "-c", "python:services.gunicorn_conf",
        f"services.{program}.app:create_app()",
    ]  # fmt: skip
    os.execv(sys.executable, command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
