"""The metric names the dashboards and alerts rely on are the ones hoptrace's processors really expose."""

from __future__ import annotations

import re

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import generate_latest

from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.processors import LATENCY_BUCKETS, RedMetricsSpanProcessor, red_metrics_registry
from tests.compose.promql import HOPTRACE_METRICS
from tests.compose.stack import TEMPO_CONFIG, load_yaml


def exposition() -> str:
    red = RedMetricsSpanProcessor()
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    provider.add_span_processor(red)
    tracer = provider.get_tracer("schema-test")
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER, attributes={"tenant.id": "acme"}):
        pass
    with tracer.start_as_current_span("orders process", kind=SpanKind.CONSUMER) as span:
        span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return generate_latest(red_metrics_registry(red)).decode()


def test_processors_expose_exactly_the_span_metric_names_the_stack_expects() -> None:
    names = set(re.findall(r"^(traces_\w+?)(?:\{| )", exposition(), flags=re.MULTILINE))
    expected = {name for name in HOPTRACE_METRICS if name.startswith("traces_spanmetrics_")}
    assert names == expected


def test_processors_use_the_labels_and_values_the_alert_rules_select() -> None:
    text = exposition()
    assert re.search(
        r'traces_spanmetrics_calls_total\{(?=[^}]*service="api")(?=[^}]*span_kind="SPAN_KIND_SERVER")'
        r'(?=[^}]*status_code="STATUS_CODE_UNSET")(?=[^}]*tenant="acme")(?=[^}]*span_name="GET /orders")',
        text,
    )
    assert 'span_kind="SPAN_KIND_CONSUMER"' in text and 'status_code="STATUS_CODE_ERROR"' in text


def test_processor_and_tempo_use_the_same_latency_buckets() -> None:
    tempo_buckets = load_yaml(TEMPO_CONFIG)["metrics_generator"]["processor"]["span_metrics"][
        "histogram_buckets"
    ]
    assert list(LATENCY_BUCKETS) == tempo_buckets


def test_embedded_backend_exposes_the_service_graph_names_the_stack_expects() -> None:
    with EmbeddedBackend() as backend:
        text = httpx.get(f"{backend.http_url}/metrics", timeout=10.0).text
    families = re.findall(r"^# TYPE (traces_\w+) (counter|histogram)$", text, flags=re.MULTILINE)
    names = {
        f"{name}_{part}" if kind == "histogram" else name
        for name, kind in families
        for part in (("bucket", "sum", "count") if kind == "histogram" else ("",))
    }
    assert names == {name for name in HOPTRACE_METRICS if name.startswith("traces_service_graph_")}
