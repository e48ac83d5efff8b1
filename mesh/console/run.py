"""Running the console: ``main(argv)`` parses ``--mesh-dir DIR [--port 20001] [--prometheus URL]``
and serves until SIGINT/SIGTERM; ``python -m mesh.console`` and ``meshlab console`` call it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from mesh.console.app import DEFAULT_PORT, Settings, create_app


def build_parser(prog: str = "python -m mesh.console") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="The meshlab console (Kiali's role).")
    parser.add_argument("--mesh-dir", default=os.environ.get("MESH_DIR"), help="env MESH_DIR")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CONSOLE_PORT", DEFAULT_PORT)),
        help=f"env CONSOLE_PORT, default {DEFAULT_PORT}",
    )  # fmt: skip
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--prometheus",
        default=os.environ.get("PROMETHEUS_URL", "http://127.0.0.1:9090"),
        help="Prometheus base URL (env PROMETHEUS_URL)",
    )
    parser.add_argument("--prometheus-timeout", type=float, default=2.0, help="seconds")
    parser.add_argument("--max-traces", type=int, default=1000, help="traces kept (newest)")
    parser.add_argument("--scenarios", default=None, help="scenario YAML directory (labels)")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m mesh.console") -> int:
    args = build_parser(prog).parse_args(argv)
    if not args.mesh_dir:
        print("console: --mesh-dir (or MESH_DIR) is required", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536 or args.max_traces < 1 or args.prometheus_timeout <= 0:
        print(
            "console: --port 1..65535, --max-traces >= 1, --prometheus-timeout > 0", file=sys.stderr
        )
        return 2
    settings = Settings(
        mesh_dir=Path(args.mesh_dir),
        prometheus_url=args.prometheus,
        prometheus_timeout=args.prometheus_timeout,
        max_traces=args.max_traces,
    )
    if args.scenarios:
        settings.scenarios = Path(args.scenarios)
    print(
        f"console: http://{args.bind}:{args.port}/ (mesh {settings.mesh_dir}, "
        f"Prometheus {settings.prometheus_url}, Zipkin API /api/v2)",
        file=sys.stderr,
        flush=True,
    )
    web.run_app(create_app(settings), host=args.bind, port=args.port, print=None)
    return 0
