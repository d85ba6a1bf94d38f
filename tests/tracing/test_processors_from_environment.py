"""The bootstrap's processor chain, as switched by HOPTRACE_* variables."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hoptrace.processors import (
    RedactionSpanProcessor,
    RedMetricsSpanProcessor,
    TenantSpanProcessor,
)
from hoptrace.tracing import processors_from_environment
from hoptrace.tracing._metrics_sharing import remove_abandoned_directories
from tests.processors.conftest import CollectingMetricExporter

RESOURCE = Resource.create({"service.name": "api"})


@pytest.fixture(autouse=True)
def _no_leaked_metrics_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # A process that serves /metrics names its shared directory in os.environ for its children.
    monkeypatch.delenv("HOPTRACE_METRICS_DIR", raising=False)


def _types(processors: list[SpanProcessor]) -> list[type]:
    return [type(p) for p in processors]


def test_default_chain_is_tenant_red_redaction_around_the_export() -> None:
    export = SimpleSpanProcessor(InMemorySpanExporter())
    installed = processors_from_environment(export, {}, resource=RESOURCE)
    assert _types(installed.processors) == [
        TenantSpanProcessor,
        RedMetricsSpanProcessor,
        RedactionSpanProcessor,
    ]
    redaction = installed.processors[2]
    assert isinstance(redaction, RedactionSpanProcessor) and redaction.downstream is export
    assert installed.endpoint_url is None  # no HOPTRACE_METRICS_PORT: no server


def test_each_processor_can_be_switched_off() -> None:
    export = SimpleSpanProcessor(InMemorySpanExporter())
    environ = {"HOPTRACE_TENANT_ATTRIBUTE": "false", "HOPTRACE_RED_METRICS": "0", "HOPTRACE_REDACTION": "off"}
    installed = processors_from_environment(export, environ, resource=RESOURCE)
    assert installed.processors == [export]
    assert installed.red is None


def test_bad_values_warn_once_each_and_fall_back_to_defaults(caplog: pytest.LogCaptureFixture) -> None:
    export = SimpleSpanProcessor(InMemorySpanExporter())
    environ = {
        "HOPTRACE_RED_METRICS": "maybe",
        "HOPTRACE_METRICS_MAX_SERIES": "1",
        "HOPTRACE_REDACT_KEYS": "(",
    }
    with caplog.at_level(logging.WARNING):
        installed = processors_from_environment(export, environ, resource=RESOURCE)
    assert installed.red is not None and installed.red.max_series == 2000
    assert len(caplog.records) == 3
    assert _types(installed.processors)[-1] is RedactionSpanProcessor


def test_configured_limit_and_redaction_words_are_used() -> None:
    exporter = InMemorySpanExporter()
    environ = {
        "HOPTRACE_METRICS_MAX_SERIES": "5",
        "HOPTRACE_REDACT_KEYS": "ssn",
        "HOPTRACE_REDACT_QUERY_PARAMETERS": "otp",
    }
    installed = processors_from_environment(SimpleSpanProcessor(exporter), environ, resource=RESOURCE)
    provider = TracerProvider(resource=RESOURCE)
    for processor in installed.processors:
        provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("x", attributes={"customer.ssn": "1", "url.query": "otp=9&a=1"}).end()
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"customer.ssn": "REDACTED", "url.query": "otp=REDACTED&a=1"}
    assert installed.red is not None and installed.red.max_series == 5


def test_metrics_port_starts_the_endpoint_and_provider_shutdown_stops_it() -> None:
    export = SimpleSpanProcessor(InMemorySpanExporter())
    environ = {"HOPTRACE_METRICS_PORT": "0", "HOPTRACE_METRICS_HOST": "127.0.0.1"}
    installed = processors_from_environment(export, environ, resource=RESOURCE)
    assert installed.endpoint_url is not None
    provider = TracerProvider(resource=RESOURCE)
    for processor in installed.processors:
        provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("op").end()
    body = httpx.get(installed.endpoint_url).text
    assert (
        'traces_spanmetrics_calls_total{service="api",span_kind="SPAN_KIND_INTERNAL",span_name="op"' in body
    )
    provider.shutdown()
    with pytest.raises(httpx.ConnectError):
        httpx.get(installed.endpoint_url)


def test_a_taken_port_logs_and_runs_without_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING):
            installed = processors_from_environment(
                SimpleSpanProcessor(InMemorySpanExporter()),
                {"HOPTRACE_METRICS_PORT": str(port)},
                resource=RESOURCE,
            )
    assert installed.endpoint_url is None and installed.red is not None
    assert ["cannot serve /metrics" in r.getMessage() for r in caplog.records] == [True]


def test_the_process_serving_metrics_shares_a_directory_with_its_children() -> None:
    installed = processors_from_environment(
        SimpleSpanProcessor(InMemorySpanExporter()), {"HOPTRACE_METRICS_PORT": "0"}, resource=RESOURCE
    )
    assert installed.red is not None and installed.endpoint_url is not None
    directory = os.environ["HOPTRACE_METRICS_DIR"]
    assert installed.red.shared_directory == directory
    assert (Path(directory) / "port").read_text() == "0"
    installed.closers[0]()


def test_a_worker_joins_its_parents_directory_and_leaves_the_port_to_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:  # the parent (a uvicorn or gunicorn supervisor) serves the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        (tmp_path / "port").write_text(port)
        environ = {"HOPTRACE_METRICS_PORT": port, "HOPTRACE_METRICS_DIR": str(tmp_path)}
        with caplog.at_level(logging.WARNING):
            installed = processors_from_environment(
                SimpleSpanProcessor(InMemorySpanExporter()), environ, resource=RESOURCE
            )
    assert installed.red is not None and installed.endpoint_url is None
    assert installed.red.shared_directory == str(tmp_path)
    assert caplog.records == []  # not a problem: the parent serves the sum


def test_a_service_with_another_port_does_not_join_an_inherited_directory(tmp_path: Path) -> None:
    (tmp_path / "port").write_text("1")  # the directory of the service that started this one
    environ = {"HOPTRACE_METRICS_PORT": "0", "HOPTRACE_METRICS_DIR": str(tmp_path)}
    installed = processors_from_environment(
        SimpleSpanProcessor(InMemorySpanExporter()), environ, resource=RESOURCE
    )
    assert installed.red is not None and installed.endpoint_url is not None
    assert installed.red.shared_directory not in (None, str(tmp_path))
    installed.closers[0]()


def test_otlp_metrics_export_builds_its_exporter_lazily_and_exports_at_shutdown() -> None:
    built: list[CollectingMetricExporter] = []

    def factory() -> CollectingMetricExporter:
        built.append(CollectingMetricExporter())
        return built[-1]

    environ = {"HOPTRACE_METRICS_OTLP": "true", "OTEL_METRIC_EXPORT_INTERVAL": "3600000"}
    installed = processors_from_environment(
        SimpleSpanProcessor(InMemorySpanExporter()),
        environ,
        resource=RESOURCE,
        metrics_exporter_factory=factory,
    )
    assert built == []
    provider = TracerProvider(resource=RESOURCE)
    for processor in installed.processors:
        provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("op").end()
    provider.shutdown()
    (exporter,) = built
    (batch,) = exporter.batches
    calls = batch.resource_metrics[0].scope_metrics[0].metrics[0]
    assert [point.value for point in calls.data.data_points] == [1]  # type: ignore[union-attr]
    assert batch.resource_metrics[0].resource.attributes["service.name"] == "api"


def test_directories_left_by_killed_servers_are_removed_when_a_new_one_is_made(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    abandoned, alive, foreign = (
        tmp_path / "hoptrace-metrics-1-a",
        tmp_path / "hoptrace-metrics-2-b",
        tmp_path / "x",
    )
    for directory, owner in ((abandoned, gone.stdout.strip()), (alive, str(os.getpid())), (foreign, "1")):
        directory.mkdir()
        (directory / "owner").write_text(owner)
    remove_abandoned_directories(str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hoptrace-metrics-2-b", "x"]
