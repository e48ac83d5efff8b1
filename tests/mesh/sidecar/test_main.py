"""The command line contract of ``python -m mesh.sidecar``."""

from __future__ import annotations

import pytest

from mesh.sidecar.__main__ import options_from_args


def test_sidecar_command_line():
    o = options_from_args(
        "--pod reviews-v2 --service reviews --labels app=reviews,version=v2 --mesh-dir /m "
        "--inbound-port 9080 --app-port 9081 --outbound-port 15001 --admin-port 15000 "
        "--bind-address 0.0.0.0 --advertise-address 10.1.2.3 --probe-path /health "
        "--probe-initial-delay 1 --probe-period 2 --probe-timeout 3 --probe-failure-threshold 4 "
        "--probe-success-threshold 5 --registry-ttl 10 --heartbeat 2".split()
    )
    assert o.pod == "reviews-v2" and o.labels == {"app": "reviews", "version": "v2"}
    assert o.workload == "reviews-v2" and o.role == "sidecar" and not o.gateway
    assert (o.inbound_port, o.app_port, o.outbound_port, o.admin_port) == (9080, 9081, 15001, 15000)
    assert o.probe is not None and o.probe.port == 9081 and o.probe.path == "/health"
    assert (o.probe.initial_delay, o.probe.period, o.probe.timeout) == (1, 2, 3)
    assert (o.probe.failure_threshold, o.probe.success_threshold) == (4, 5)


def test_gateway_command_line():
    o = options_from_args(
        "--gateway --pod istio-ingressgateway --labels istio=ingressgateway,app=istio-ingressgateway "
        "--mesh-dir /m --admin-port 15000 --bind-address 0.0.0.0 "
        "--gateway-port-map 8080:18080 --gateway-port-map 80:18081".split()
    )
    assert o.gateway and o.role == "gateway" and o.probe is None
    assert o.gateway_port_map == {8080: 18080, 80: 18081}


@pytest.mark.parametrize("bad", ["--labels novalue", "--gateway-port-map x:y"])
def test_bad_arguments_exit(bad):
    with pytest.raises(SystemExit):
        options_from_args(["--pod", "p", "--mesh-dir", "/m", *bad.split()])


def test_parsing_the_command_line_loads_no_shutil():
    """argparse's formatter is given its width: ``shutil`` (and bz2, lzma) stay out of a
    proxy's memory; the help is what argparse's own formatter makes at that ``COLUMNS``."""
    import os
    import subprocess
    import sys

    probe = (
        "import argparse, sys\n"
        "from mesh.sidecar.__main__ import build_parser, options_from_args\n"
        "options_from_args(['--pod', 'p', '--mesh-dir', '/m'])\n"
        "print(sorted({'shutil', 'bz2', 'lzma'} & set(sys.modules)))\n"
        "p = build_parser()\nmine = p.format_help()\n"
        "p.formatter_class = argparse.HelpFormatter\nprint(mine == p.format_help())"
    )
    for columns in ("60", "120"):
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
            env={**os.environ, "COLUMNS": columns},
        )  # fmt: skip
        assert out.stdout.split("\n")[:2] == ["[]", "True"]
