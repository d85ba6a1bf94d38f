"""The alert rules fire on real traffic: a real Prometheus scrapes the demo services run by the harness.

The demo services (harness/demo: api -> inventory over HTTP, api -> RabbitMQ -> worker -> inventory) run
as their own processes under ``hoptrace run`` with RED metrics on (``HOPTRACE_METRICS_PORT``) and export
their spans to an embedded backend. Prometheus (Debian's package) scrapes them and evaluates
compose/prometheus/alerts.yml every second. Tenant ``acme`` orders the item that inventory fails to
reserve; tenant ``globex`` orders one that works.

The production rules hold their conditions for 1 to 10 minutes (``for:``) before they fire, which does
not fit the issue's budget ("alert firing within 60 seconds of incident"). The test therefore loads a
copy in which only ``for:`` is shortened; it checks that expressions, thresholds, labels and annotations
are the production ones.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hoptrace.harness import Service, ServiceLauncher, free_port, poll_until, start_rabbitmq
from hoptrace.harness.backend import EmbeddedBackend
from tests.compose.prometheus_server import PrometheusServer
from tests.compose.stack import ALERTS

FOR_IN_TEST = "2s"
FAILING, HEALTHY = "acme", "globex"
FAILING_ITEM, GOOD_ITEM = "unobtainium", "widget"  # harness/demo/inventory.py fails to reserve the first
ALERT_BUDGET_SECONDS = 60
GRAPH_ALERT = "HoptraceServiceGraphFailedRequests"


def rules_with_short_for(directory: Path) -> Path:
    """alerts.yml with every ``for:`` set to FOR_IN_TEST, and nothing else changed (checked)."""
    text = ALERTS.read_text()
    shortened, count = re.subn(r"^(\s+for: )\S+$", rf"\g<1>{FOR_IN_TEST}", text, flags=re.MULTILINE)

    def rules(rules_text: str) -> list[dict[str, Any]]:
        return [rule for group in yaml.safe_load(rules_text)["groups"] for rule in group["rules"]]

    assert count == len(rules(text)) > 0
    without_for = [{k: v for k, v in rule.items() if k != "for"} for rule in rules(text)]
    assert [{k: v for k, v in rule.items() if k != "for"} for rule in rules(shortened)] == without_for
    path = directory / "alerts.yml"
    path.write_text(shortened)
    return path


@dataclass
class Stack:
    api: Service
    launcher: ServiceLauncher
    prometheus: PrometheusServer
    backend: EmbeddedBackend

    def order(self, tenant: str, item: str) -> int:
        assert self.api.url is not None
        response = httpx.post(
            f"{self.api.url}/orders", json={"item": item}, headers={"X-Tenant-ID": tenant}, timeout=10.0
        )
        return response.status_code

    def diagnostics(self) -> str:
        prometheus = self.prometheus
        return f"alerts: {prometheus.alerts()}\n{self.launcher.logs()}\nprometheus:\n{prometheus.log()}"


def prometheus_config(workdir: Path, service_ports: list[int], backend: EmbeddedBackend) -> dict[str, Any]:
    """compose/prometheus/prometheus.yml's hoptrace jobs and labels, on this test's ports, every second."""

    def job(name: str, targets: list[str]) -> dict[str, Any]:
        return {"job_name": name, "static_configs": [{"targets": targets, "labels": {"source": "hoptrace"}}]}

    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_with_short_for(workdir))],
        "scrape_configs": [
            job("hoptrace-services", [f"127.0.0.1:{port}" for port in service_ports]),
            job("hoptrace-backend", [backend.http_url.removeprefix("http://")]),
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("alerts-e2e")
    metrics_ports = {name: free_port() for name in ("api", "inventory", "worker")}
    with EmbeddedBackend() as backend, start_rabbitmq() as rabbitmq:
        shared = {"AMQP_URL": rabbitmq.url, "DEMO_QUEUE": rabbitmq.unique_name("alerts-orders")}
        with ServiceLauncher(backend.otlp_grpc_endpoint, env=shared, log_dir=workdir) as launcher:

            def metrics(name: str) -> dict[str, str]:
                return {"HOPTRACE_METRICS_PORT": str(metrics_ports[name])}

            inventory = launcher.start_asgi(
                "inventory", "hoptrace.harness.demo.inventory:app", env=metrics("inventory")
            )
            assert inventory.url is not None
            downstream = {"DEMO_INVENTORY_URL": inventory.url}
            launcher.start(
                "worker",
                [sys.executable, "-m", "hoptrace.harness.demo.worker"],
                ready_log=r"worker ready",
                env={**downstream, **metrics("worker")},
            )
            # api is the edge: the tenant comes from its X-Tenant-ID header and travels as baggage.
            edge = {"HOPTRACE_TENANT_HEADER": "X-Tenant-ID", **downstream, **metrics("api")}
            api = launcher.start_asgi("api", "hoptrace.harness.demo.api:app", env=edge)
            config = prometheus_config(workdir, list(metrics_ports.values()), backend)
            with PrometheusServer(workdir, config) as prometheus:
                poll_until(
                    lambda: len(prometheus.query("up == 1")) == len(metrics_ports) + 1,
                    timeout=30,
                    what="Prometheus scraping the three services and the backend",
                    on_timeout=lambda: f"{prometheus.targets()}\n{launcher.logs()}",
                )
                yield Stack(api, launcher, prometheus, backend)


def tenant_alerts(stack: Stack) -> list[dict[str, Any]]:
    alerts = stack.prometheus.alerts()
    return [alert for alert in alerts if alert["labels"]["alertname"] == "HoptraceTenantErrorSpike"]


def test_tenant_alert_fires_for_the_failing_tenant_and_not_the_other(stack: Stack) -> None:
    incident = time.monotonic()

    def failing_tenant_alert_fires() -> dict[str, Any] | None:
        # The incident goes on while we wait. api accepts every order (202); the failure happens
        # later, when worker reserves acme's item at inventory.
        assert stack.order(FAILING, FAILING_ITEM) == 202
        assert stack.order(HEALTHY, GOOD_ITEM) == 202
        firing = [alert for alert in tenant_alerts(stack) if alert["state"] == "firing"]
        return next((alert for alert in firing if alert["labels"].get("tenant") == FAILING), None)

    alert = poll_until(
        failing_tenant_alert_fires,
        timeout=ALERT_BUDGET_SECONDS,
        what=f"HoptraceTenantErrorSpike to fire for tenant {FAILING}",
        on_timeout=stack.diagnostics,
    )
    assert time.monotonic() - incident < ALERT_BUDGET_SECONDS
    assert alert["labels"]["severity"] == "page"
    assert alert["annotations"]["summary"].startswith(f"Tenant {FAILING} sees ")

    others = [alert for alert in tenant_alerts(stack) if alert["labels"].get("tenant") != FAILING]
    assert others == [], "the tenant alert must stay silent for a tenant without errors"
    # Silence means something only if the healthy tenant's requests were measured, by every service.
    calls = f'traces_spanmetrics_calls_total{{tenant="{HEALTHY}", source!="tempo"}}'
    measured = stack.prometheus.query(f"sum by (service) (rate({calls}[5m])) > 0")
    assert {series["metric"]["service"] for series in measured} == {"api", "inventory", "worker"}


def test_latency_exemplars_lead_to_stored_traces(stack: Stack) -> None:
    """The README's walk from a RED panel exemplar to the trace view: the exemplar's trace id is a trace."""

    def exemplar_trace_ids() -> list[str] | None:
        assert stack.order(HEALTHY, GOOD_ITEM) == 202
        data = stack.prometheus.exemplars('traces_spanmetrics_latency_bucket{job="hoptrace-services"}')
        ids = [exemplar["labels"].get("trace_id") for series in data for exemplar in series["exemplars"]]
        return [trace_id for trace_id in ids if trace_id] or None

    trace_ids = poll_until(
        exemplar_trace_ids, timeout=30, what="exemplars with a trace_id", on_timeout=stack.diagnostics
    )
    stored = poll_until(
        lambda: next((trace_id for trace_id in trace_ids if stack.backend.store.get_trace(trace_id)), None),
        timeout=30,
        what=f"one of the exemplar traces {trace_ids[:3]} in the backend",
        on_timeout=stack.diagnostics,
    )
    assert re.fullmatch(r"[0-9a-f]{32}", stored)


def test_service_graph_alert_fires_for_the_failing_edge_only(stack: Stack) -> None:
    """worker -> inventory fails for acme's orders; api -> inventory (stock checks) never fails."""

    def failing_edge_alert() -> dict[str, Any] | None:
        assert stack.order(FAILING, FAILING_ITEM) == 202
        assert stack.order(HEALTHY, GOOD_ITEM) == 202
        alerts = [a for a in stack.prometheus.alerts() if a["labels"]["alertname"] == GRAPH_ALERT]
        edges = {(a["labels"]["client"], a["labels"]["server"]): a for a in alerts if a["state"] == "firing"}
        return edges.get(("worker", "inventory"))

    poll_until(
        failing_edge_alert,
        timeout=ALERT_BUDGET_SECONDS,
        what=f"{GRAPH_ALERT} to fire for worker -> inventory",
        on_timeout=stack.diagnostics,
    )
    alerts = [a for a in stack.prometheus.alerts() if a["labels"]["alertname"] == GRAPH_ALERT]
    assert {(a["labels"]["client"], a["labels"]["server"]) for a in alerts} == {("worker", "inventory")}
    edge = 'traces_service_graph_request_total{client="api", server="inventory"}'
    healthy_edge = stack.prometheus.query(f"sum by (client, server) (rate({edge}[5m])) > 0")
    assert healthy_edge, "the silent edge must have carried requests"
