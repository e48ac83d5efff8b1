"""``python -m mesh.sidecar``: the command line of the data plane (DESIGN.md contract)."""

from __future__ import annotations

if __name__ == "__main__":
    # Before anything imports asyncio, ssl or hashlib: no OpenSSL in the proxy, unless it has
    # a workload identity to speak mTLS with (a secrets directory, ``mesh.sidecar.tls``).
    import os as _os
    import sys as _sys

    from mesh.sidecar import memory_budget

    if not memory_budget.needs_tls(_sys.argv[1:], _os.environ):
        memory_budget.stub_out_openssl()
    memory_budget.tune_malloc()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from mesh.sidecar.prober import ProbeSpec  # noqa: E402

# --help's text: not the docstring, which a proxy's ``-OO`` compiles out (memory_budget).
DESCRIPTION = "The mesh's data plane: a pod's sidecar proxy, or the ingress gateway."


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"bad label {item!r}: expected key=value")
        labels[key.strip()] = value.strip()
    return labels


def parse_port_map(text: str) -> tuple[int, int]:
    server, sep, listen = text.partition(":")
    try:
        return int(server), int(listen if sep else server)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad port map {text!r}: SERVER_PORT:LISTEN_PORT") from exc


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, given its width: left to itself it asks ``shutil``, whose
    import (with ``bz2``, ``lzma``, ``zlib``: ~0.7 MB of RSS) every parse would pay, since
    ``add_argument`` makes a formatter. The width is found as ``shutil`` finds it."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mesh.sidecar", description=DESCRIPTION, formatter_class=_Formatter
    )
    p.add_argument("--pod", required=True)
    p.add_argument("--service")
    p.add_argument("--labels", type=parse_labels, default={})
    p.add_argument("--mesh-dir", default=os.environ.get("MESH_DIR"))
    p.add_argument("--gateway", action="store_true", help="run as the ingress gateway")
    p.add_argument("--namespace", default="default", help="the pod's namespace")
    p.add_argument("--service-account", default="default", help="the pod's service account")
    p.add_argument(
        "--workload", default="",
        help="the pod's Deployment (Istio's workload label; default <app>-<version>)",
    )  # fmt: skip
    p.add_argument(
        "--no-sidecar", action="store_true",
        help="the pod has no sidecar (sidecar.istio.io/inject: false): register and probe "
        "the app at --app-port and resolve Service names for it, with no Istio routing",
    )  # fmt: skip
    p.add_argument("--inbound-port", type=int)
    p.add_argument(
        "--container-port", type=int,
        help="the pod's container port, which its Service's targetPort names (default: "
        "--inbound-port); names the SERVER spans by the Service port",
    )  # fmt: skip
    p.add_argument("--app-port", type=int)
    p.add_argument("--outbound-port", type=int)
    p.add_argument("--admin-port", type=int, default=15000)
    p.add_argument("--bind-address", default="0.0.0.0")
    p.add_argument("--advertise-address")
    p.add_argument("--probe-path", help="readiness probe httpGet path (none: ready at once)")
    p.add_argument("--probe-initial-delay", type=float, default=0.0)
    p.add_argument("--probe-period", type=float, default=10.0)
    p.add_argument("--probe-timeout", type=float, default=1.0)
    p.add_argument("--probe-failure-threshold", type=int, default=3)
    p.add_argument("--probe-success-threshold", type=int, default=1)
    p.add_argument("--registry-ttl", type=float, default=10.0)
    p.add_argument("--heartbeat", type=float, default=2.0)
    p.add_argument(
        "--gateway-port-map", type=parse_port_map, action="append", default=[],
        metavar="SERVER_PORT:LISTEN_PORT",
    )  # fmt: skip
    p.add_argument("--header-timeout", type=int, default=10, help="seconds to read a request head")
    p.add_argument("--idle-timeout", type=int, default=300, help="idle connection timeout (s)")
    p.add_argument(
        "--max-connections", type=int,
        help="concurrent client connections per listener; more are closed at once "
        "(default: a quarter of the open-file limit)",
    )  # fmt: skip
    p.add_argument(
        "--secrets-dir", default=os.environ.get("MESH_SECRETS_DIR"),
        help="the pod's private secrets directory (workload certificate, written by the "
        "agent): mTLS with other sidecars; none: plaintext only (default: MESH_SECRETS_DIR)",
    )  # fmt: skip
    p.add_argument("--access-log", default="-", help="'-' stdout (default), 'off', or a file")
    p.add_argument("--seed", type=int, help="seed of the proxy's random source (tests)")
    return p


def options_from_args(argv: Sequence[str] | None = None):  # type: ignore[no-untyped-def]
    from mesh.sidecar.server import Options

    args = build_parser().parse_args(argv)
    if not args.mesh_dir:
        build_parser().error("--mesh-dir (or MESH_DIR) is required")
    if not args.gateway and args.inbound_port is not None and args.app_port is None:
        build_parser().error("--app-port is required with --inbound-port")
    probe = None
    if args.probe_path and not args.gateway and args.app_port is not None:
        probe = ProbeSpec(
            path=args.probe_path,
            port=args.app_port,
            initial_delay=args.probe_initial_delay,
            period=args.probe_period,
            timeout=args.probe_timeout,
            failure_threshold=args.probe_failure_threshold,
            success_threshold=args.probe_success_threshold,
        )
    return Options(
        pod=args.pod,
        mesh_dir=Path(args.mesh_dir),
        labels=args.labels,
        service=args.service,
        gateway=args.gateway,
        namespace=args.namespace,
        service_account=args.service_account,
        plain=args.no_sidecar,
        inbound_port=args.inbound_port,
        container_port=args.container_port,
        app_port=args.app_port,
        outbound_port=args.outbound_port,
        admin_port=args.admin_port,
        bind_address=args.bind_address,
        advertise_address=args.advertise_address,
        probe=probe,
        registry_ttl=args.registry_ttl,
        heartbeat=args.heartbeat,
        gateway_port_map=dict(args.gateway_port_map),
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        access_log=args.access_log,
        seed=args.seed,
        workload_name=args.workload,
        secrets_dir=Path(args.secrets_dir) if args.secrets_dir else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    import asyncio

    import uvloop

    from mesh.sidecar.server import Sidecar
    from mesh.sidecar.sockets import raise_fd_limit

    options = options_from_args(argv)
    raise_fd_limit()

    async def run() -> None:
        sidecar = Sidecar(options, asyncio.get_running_loop())
        await sidecar.run()

    try:
        uvloop.run(run())
    except OSError as exc:
        print(f"sidecar {options.pod}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
