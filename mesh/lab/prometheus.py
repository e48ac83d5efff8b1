"""A real Prometheus for the lab: its config, where to find the binary, how to run it.

Primitives: ``ObservabilityPlan`` (what the local lab starts besides the pods: Prometheus and
the console, with their ports), ``config_yaml(targets_file)`` (scrape every proxy's admin port
``/stats/prometheus`` every second; targets from the manager's file-SD list
``$MESH_DIR/observe/targets.json``, never a hand-kept list), ``find_binary()`` (``prometheus`` on
PATH) with ``INSTALL_HINT`` when there is none, and ``argv(...)`` (the command line: loopback
UI, a throw-away TSDB in the mesh directory, 2 h retention).

The compose lab runs the same config in its ``prometheus`` service (compose/prometheus.yml is
this function's output for ``/mesh/observe/targets.json``; a test keeps them equal).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from mesh.meshdir import MeshDir

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


@dataclass(frozen=True)
class ObservabilityPlan:
    """What the local lab runs to be observed: Prometheus (when there is a binary) scraping
    the manager's file-SD targets into ``$MESH_DIR/prometheus/``, and the console.

    ``processes(python)`` gives ``(name, argv)`` pairs for the lab's supervisor;
    ``prepare()`` writes Prometheus's config. Ports: ``console_port`` (20001 in ``meshlab up``),
    ``prometheus_port`` (9090).
    """

    mesh_root: Path
    console_port: int
    prometheus_port: int
    prometheus_binary: str | None

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    @property
    def collector_address(self) -> str:
        """``ZIPKIN_ADDRESS`` for the proxies: the console's collector."""
        return f"127.0.0.1:{self.console_port}"

    @property
    def directory(self) -> Path:
        return self.mesh_root / "prometheus"

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        targets = MeshDir(self.mesh_root).scrape_targets
        (self.directory / "prometheus.yml").write_text(config_yaml(targets))

    def processes(self, python: str) -> list[tuple[str, list[str]]]:
        found = []
        if self.prometheus_binary is not None:
            found.append(
                (
                    "prometheus",
                    argv(
                        self.prometheus_binary,
                        self.directory / "prometheus.yml",
                        self.directory / "data",
                        f"127.0.0.1:{self.prometheus_port}",
                    ),
                )
            )
        found.append(
            (
                "console",
                [
                    python, "-m", "mesh.console", "--mesh-dir", str(self.mesh_root),
                    "--port", str(self.console_port), "--bind", "127.0.0.1",
                    "--prometheus", self.prometheus_url,
                ],
            )
        )  # fmt: skip
        return found
