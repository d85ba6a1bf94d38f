"""compose/prometheus/prometheus.yml: valid for promtool, and consistent with the compose services."""

from __future__ import annotations

import subprocess
from typing import Any

from tests.compose.promql import PROMTOOL
from tests.compose.stack import PROMETHEUS_CONFIG, compose_model, load_yaml


def scrape_jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}


def static_targets(job: dict[str, Any]) -> list[str]:
    return [target for group in job.get("static_configs", []) for target in group["targets"]]


def test_promtool_check_config_accepts_config_and_rules() -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "config", PROMETHEUS_CONFIG.name],
        cwd=PROMETHEUS_CONFIG.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_scrapes_every_demo_service_on_its_metrics_port() -> None:
    services = compose_model()["services"]
    job = scrape_jobs()["hoptrace-services"]
    targets = static_targets(job)
    assert sorted(target.split(":")[0] for target in targets) == ["api", "inventory", "worker"]
    dockerfile = (PROMETHEUS_CONFIG.parents[1] / "demo" / "Dockerfile").read_text()
    for target in targets:
        host, port = target.split(":")
        assert host in services
        assert f"HOPTRACE_METRICS_PORT={port}" in dockerfile
    assert job["static_configs"][0]["labels"] == {"source": "hoptrace"}


def test_scrapes_the_embedded_backend_tempo_rabbitmq_and_alertmanager() -> None:
    jobs = scrape_jobs()
    backend = jobs["hoptrace-backend"]["dns_sd_configs"][0]
    assert backend["names"] == ["hoptrace-backend"] and backend["port"] == 3200
    assert "hoptrace-backend" in compose_model()["services"]
    assert static_targets(jobs["tempo"]) == ["tempo:3200"]
    assert static_targets(jobs["rabbitmq"]) == ["rabbitmq:15692"]


def test_alerts_go_to_the_compose_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    (target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in compose_model()["services"]
    assert any(published.endswith(f":{port}") for published in compose_model()["services"][host]["ports"])
    assert config["rule_files"] == ["alerts.yml"]
