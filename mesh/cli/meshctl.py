"""meshctl: the config tool (istioctl's role).

Offline commands (``analyze``, ``route -f``) live in ``mesh.cli.offline``; commands that talk
to a live mesh through ``$MESH_DIR`` (``apply``, ``delete``, ``get``, ``status``,
``proxy-status``, ``endpoints``) live in ``mesh.cli.live``; ``describe pod`` and ``tap`` in
``mesh.cli.security``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mesh.cli import live, offline, security


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshctl", description="Validate, simulate and apply Istio traffic config."
    )
    parser.add_argument(
        "--mesh-dir",
        default=os.environ.get("MESH_DIR"),
        help="the live mesh directory (env MESH_DIR)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    offline.register(commands)
    live.register(commands)
    security.register(commands, live.with_mesh)
    for command in commands.choices.values():
        # Also after the command, as kubectl takes its global flags (meshctl analyze --mesh-dir D).
        command.add_argument(
            "--mesh-dir", default=argparse.SUPPRESS, help="the live mesh directory (env MESH_DIR)"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
