"""Open-span records: services report spans as they start; the harness reads them back; the Tempo API,
search and metrics never show them; bad reports get 400 and the server keeps serving."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from hoptrace.harness import OpenSpan, poll_until
from hoptrace.harness import SpanKind as Kind
from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.harness.backend._open_spans import OpenSpanRegistry
from hoptrace.harness.tempo._client import TempoClient
from hoptrace.tracing import OpenSpanReporter
from tests.harness.backend.conftest import ServiceFactory

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = {"traceId": TRACE, "spanId": "00f067aa0ba902b7", "name": "process orders", "kind": "consumer"}


def test_reported_spans_come_back_and_stay_out_of_the_tempo_api(backend: EmbeddedBackend) -> None:
    report = {"service": "worker", "spans": [{**SPAN, "startTimeUnixNano": 5}]}
    assert httpx.post(backend.open_spans_url, json=report).status_code == 200
    with TempoClient(backend.http_url) as client:
        assert client.started_spans(TRACE) == [
            OpenSpan(TRACE, "00f067aa0ba902b7", None, "process orders", Kind.CONSUMER, "worker", 5)
        ]
        assert client.get_trace(TRACE) is None  # the Tempo API shows finished spans only
        assert client.search("{}", start=0, end=2**31) == []
        assert client.started_spans("0" * 31 + "1") == []
    metrics = httpx.get(f"{backend.http_url}/metrics").text
    assert "hoptrace_backend_spans_stored 0.0" in metrics


def test_reporter_sends_a_record_when_a_span_starts(
    backend: EmbeddedBackend, service: ServiceFactory
) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    reporter = OpenSpanReporter(backend.open_spans_url, "api")
    provider.add_span_processor(reporter)
    span = provider.get_tracer("t").start_span("GET /stock", kind=SpanKind.SERVER)
    context = span.get_span_context()
    trace_id = f"{context.trace_id:032x}"
    poll_until(lambda: backend.open_spans.started(trace_id), timeout=10, what="the open record")
    (record,) = backend.open_spans.started(trace_id)
    assert (record.span_id, record.name, record.kind, record.service_name) == (
        f"{context.span_id:016x}",
        "GET /stock",
        Kind.SERVER,
        "api",
    )
    assert record.start_time_unix_nano == span.start_time
    span.end()
    provider.shutdown()
    assert reporter.dropped == 0


def test_malformed_reports_get_400_and_the_server_keeps_serving(backend: EmbeddedBackend) -> None:
    bad = [
        b"not json",
        b'{"spans": 3}',
        b'{"spans": [{"traceId": "xyz", "spanId": "00f067aa0ba902b7"}]}',
        b'{"spans": [{"traceId": "' + TRACE.encode() + b'", "spanId": "0000000000000000"}]}',
        b'{"spans": [{"traceId": "' + TRACE.encode() + b'", "spanId": "00f067aa0ba902b7", "kind": "boss"}]}',
    ]
    for body in bad:
        response = httpx.post(backend.open_spans_url, content=body)
        assert response.status_code == 400, body
        assert "malformed open-span report" in response.text
    assert httpx.get(f"{backend.open_spans_url}/nothex").status_code == 400
    assert httpx.put(backend.open_spans_url).status_code == 405
    assert httpx.get(f"{backend.http_url}/ready").status_code == 200


def test_a_reporter_that_cannot_reach_the_backend_drops_counts_and_never_raises() -> None:
    provider = TracerProvider()
    reporter = OpenSpanReporter("http://127.0.0.1:9/hoptrace/v1/open-spans", "api")
    provider.add_span_processor(reporter)
    provider.get_tracer("t").start_span("a").end()
    poll_until(lambda: reporter.dropped == 1, timeout=10, what="the drop to be counted")
    provider.shutdown()


def test_registry_forgets_the_oldest_traces_past_its_bound() -> None:
    registry = OpenSpanRegistry(max_records=2)
    records = [OpenSpan(f"{n:032x}", f"{n:016x}", None, "s", Kind.INTERNAL, "svc", n) for n in (1, 2, 3)]
    for record in records:
        registry.add([record])
    assert registry.started(records[0].trace_id) == []
    assert registry.started(records[2].trace_id) == [records[2]]
