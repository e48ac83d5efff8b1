"""The lab's Prometheus config and processes."""

from __future__ import annotations

from pathlib import Path

import yaml

from mesh.lab.prometheus import ObservabilityPlan, config_yaml

ROOT = Path(__file__).resolve().parents[3]


def test_config_scrapes_admin_ports_every_second_from_file_sd():
    config = yaml.safe_load(config_yaml("/mesh/observe/targets.json"))
    assert config["global"]["scrape_interval"] == "1s"
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/stats/prometheus"
    assert job["file_sd_configs"][0]["files"] == ["/mesh/observe/targets.json"]


def test_compose_runs_the_same_config():
    assert (ROOT / "compose" / "prometheus.yml").read_text() == config_yaml(
        "/mesh/observe/targets.json"
    )


def test_plan_with_and_without_a_binary(tmp_path):
    plan = ObservabilityPlan(tmp_path, 20001, 9090, "/usr/bin/prometheus")
    plan.prepare()
    assert (tmp_path / "prometheus" / "prometheus.yml").read_text() == config_yaml(
        tmp_path / "observe" / "targets.json"
    )
    names = [name for name, _ in plan.processes("python3")]
    assert names == ["prometheus", "console"]
    prometheus = dict(plan.processes("python3"))["prometheus"]
    assert "--web.listen-address=127.0.0.1:9090" in prometheus
    console = dict(plan.processes("python3"))["console"]
    assert console[:3] == ["python3", "-m", "mesh.console"] and "http://127.0.0.1:9090" in console
    assert plan.collector_address == "127.0.0.1:20001"
    without = ObservabilityPlan(tmp_path, 20001, 9090, None)
    assert [name for name, _ in without.processes("python3")] == ["console"]
