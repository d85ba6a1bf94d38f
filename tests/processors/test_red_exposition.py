"""The /metrics endpoint: Prometheus text or OpenMetrics by Accept, exemplars, exact values."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from hoptrace.processors import MetricsEndpoint, RedMetricsSpanProcessor, start_metrics_endpoint

MS = 1_000_000
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
SERVER_LABELS = {
    "service": "api",
    "span_name": "GET /orders/{id}",
    "span_kind": "SPAN_KIND_SERVER",
    "status_code": "STATUS_CODE_ERROR",
    "tenant": "",
}


@pytest.fixture
def red() -> RedMetricsSpanProcessor:
    red = RedMetricsSpanProcessor()
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    provider.add_span_processor(red)
    tracer = provider.get_tracer("test")
    for duration in (1 * MS, 3 * MS, 3 * MS):
        span = tracer.start_span("GET /orders/{id}", kind=SpanKind.SERVER, start_time=0, context=Context())
        span.set_attribute("http.response.status_code", 500)
        span.end(end_time=duration)
    return red


@pytest.fixture
def endpoint(red: RedMetricsSpanProcessor) -> Iterator[MetricsEndpoint]:
    endpoint = start_metrics_endpoint(red, host="127.0.0.1", port=0)
    try:
        yield endpoint
    finally:
        endpoint.close()


def _samples(text: str, openmetrics: bool) -> dict[tuple[str, tuple[tuple[str, str], ...]], object]:
    families = parse_openmetrics(text) if openmetrics else parse_text(text)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample
        for family in families
        for sample in family.samples
    }


def _key(name: str, **extra: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted({**SERVER_LABELS, **extra}.items())))


def test_prometheus_text_by_default_with_exact_values(endpoint: MetricsEndpoint) -> None:
    response = httpx.get(endpoint.url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert " # {" not in response.text  # no exemplars in the Prometheus text format
    samples = _samples(response.text, openmetrics=False)
    values = {
        "calls": samples[_key("traces_spanmetrics_calls_total")].value,  # type: ignore[attr-defined]
        "count": samples[_key("traces_spanmetrics_latency_count")].value,  # type: ignore[attr-defined]
        "le_0.002": samples[_key("traces_spanmetrics_latency_bucket", le="0.002")].value,  # type: ignore[attr-defined]
        "le_0.004": samples[_key("traces_spanmetrics_latency_bucket", le="0.004")].value,  # type: ignore[attr-defined]
        "le_+Inf": samples[_key("traces_spanmetrics_latency_bucket", le="+Inf")].value,  # type: ignore[attr-defined]
    }
    assert values == {"calls": 3, "count": 3, "le_0.002": 1, "le_0.004": 3, "le_+Inf": 3}
    assert samples[_key("traces_spanmetrics_latency_sum")].value == pytest.approx(0.007)  # type: ignore[attr-defined]


def test_openmetrics_when_accepted_carries_exemplars(
    endpoint: MetricsEndpoint, red: RedMetricsSpanProcessor
) -> None:
    response = httpx.get(endpoint.url, headers={"Accept": OPENMETRICS})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")
    samples = _samples(response.text, openmetrics=True)
    (series,) = red.snapshot()
    expected = series.exemplars[1]
    assert expected is not None
    bucket = samples[_key("traces_spanmetrics_latency_bucket", le="0.004")]
    assert bucket.value == 3  # type: ignore[attr-defined]
    assert bucket.exemplar.labels == {"trace_id": expected.trace_id, "span_id": expected.span_id}  # type: ignore[attr-defined]
    assert bucket.exemplar.value == 0.003  # type: ignore[attr-defined]
    assert samples[_key("traces_spanmetrics_latency_bucket", le="0.008")].exemplar is None  # type: ignore[attr-defined]


def test_self_metrics_count_overflow_and_failures(endpoint: MetricsEndpoint) -> None:
    samples = _samples(httpx.get(endpoint.url).text, openmetrics=False)
    assert samples[("hoptrace_spanmetrics_overflow_spans_total", ())].value == 0  # type: ignore[attr-defined]
    assert samples[("hoptrace_spanmetrics_failed_spans_total", ())].value == 0  # type: ignore[attr-defined]
    assert ("hoptrace_invalid_tenants_total", ()) in samples


def test_promtool_accepts_the_prometheus_text(endpoint: MetricsEndpoint) -> None:
    text = httpx.get(endpoint.url).text
    result = subprocess.run(
        ["/usr/bin/promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_malformed_request_gets_an_http_error_and_the_endpoint_keeps_serving(
    endpoint: MetricsEndpoint,
) -> None:
    with socket.create_connection((endpoint.host, endpoint.port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        reply = raw.recv(4096)
    assert b"Error code: 400" in reply  # an unparseable request line gets an HTTP/0.9-style error body
    assert httpx.post(endpoint.url).status_code == 405
    assert httpx.get(endpoint.url).status_code == 200


def test_close_frees_the_port(red: RedMetricsSpanProcessor) -> None:
    endpoint = start_metrics_endpoint(red)
    port = endpoint.port
    endpoint.close()
    endpoint.close()  # idempotent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_scrapes_during_heavy_recording_are_consistent(red: RedMetricsSpanProcessor) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    provider.add_span_processor(red)
    tracer = provider.get_tracer("test")
    endpoint = start_metrics_endpoint(red)

    def record() -> None:
        for n in range(3000):
            span = tracer.start_span(f"op{n % 3}", start_time=0, context=Context())
            span.end(end_time=(n % 50) * MS)

    workers = [threading.Thread(target=record) for _ in range(3)]
    try:
        for worker in workers:
            worker.start()
        scrapes = 0
        while any(worker.is_alive() for worker in workers) or scrapes == 0:
            families = {f.name: f for f in parse_text(httpx.get(endpoint.url).text)}
            calls = {
                tuple(sorted(s.labels.items())): s.value for s in families["traces_spanmetrics_calls"].samples
            }
            buckets: dict[tuple[tuple[str, str], ...], list[float]] = {}
            for sample in families["traces_spanmetrics_latency"].samples:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                if sample.name.endswith("_count"):
                    assert sample.value == calls[labels]
                elif sample.name.endswith("_bucket"):
                    buckets.setdefault(labels, []).append(sample.value)
            for counts in buckets.values():
                assert counts == sorted(counts)
            scrapes += 1
    finally:
        for worker in workers:
            worker.join()
        endpoint.close()
    op_calls = sum(s.count for s in red.snapshot() if s.labels["span_name"].startswith("op"))
    assert op_calls == 9000
