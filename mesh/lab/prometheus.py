"""A real Prometheus for the lab: its config, where to find the binary, how to run it.

Primitives: ``config_yaml(targets_file)`` (scrape every proxy's admin port
``/stats/prometheus`` every second; targets from the manager's file-SD list
``$MESH_DIR/observe/targets.json``, never a hand-kept list), ``find_binary()`` (``prometheus`` on
PATH) with ``INSTALL_HINT`` when there is none, and ``argv(...)`` (the command line: loopback
UI, a throw-away TSDB in the mesh directory, 2 h retention).

The compose lab runs the same config in its ``prometheus`` service (compose/prometheus.yml is
this function's output for ``/mesh/observe/targets.json``; a test keeps them equal).
"""

from __future__ import annotations

import shutil
from pathlib import Path

DEFAULT_PORT = 9090
SCRAPE_INTERVAL = "1s"
INSTALL_HINT = (
    "no `prometheus` binary on PATH: the lab runs without metrics. Install Debian's package "
    "(sudo apt-get install prometheus; then `sudo systemctl disable --now prometheus` if it "
    "started a system one on :9090) or put a release from prometheus.io on PATH, and start the "
    "lab again"
)


def config_yaml(targets_file: str | Path, interval: str = SCRAPE_INTERVAL) -> str:
    """Prometheus's config (YAML; JSON-compatible quoting) for the lab's proxies."""
    return f"""# meshlab: every proxy's /stats/prometheus, targets from the mesh registry (file SD).
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: mesh-proxies
    metrics_path: /stats/prometheus
    file_sd_configs:
      - files: ["{targets_file}"]
        refresh_interval: 5s
"""


def find_binary() -> str | None:
    return shutil.which("prometheus")


def argv(binary: str, config_file: Path, data_dir: Path, address: str) -> list[str]:
    return [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=2h",
        f"--web.listen-address={address}",
        "--log.level=warn",
    ]
