"""Redaction on the export thread masks exactly what the redaction processor masks, and the bootstrap's
pipeline uses it: tenant and RED on the request path, the batch processor, then masking per batch."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from hoptrace.processors import REDACTED, Redactor, RedMetricsSpanProcessor, TenantSpanProcessor
from hoptrace.tracing._otlp.redacting import RedactingExporter
from hoptrace.tracing._pipeline import (
    CountingBatchSpanProcessor,
    ExporterWarmUp,
    LazyOtlpExporter,
    build_span_processors,
)
from hoptrace.tracing._settings import resolve_settings
from hoptrace.tracing._spans.hop import HopTracer

RESOURCE = Resource({"service.name": "svc"})


def _export_through(exporter: SpanExporter, *attribute_sets: dict[str, AttributeValue]) -> list[ReadableSpan]:
    """End one span per attribute set on a provider whose spans go to ``exporter``; return them."""
    ended: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            ended.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = HopTracer(provider)
    for number, attributes in enumerate(attribute_sets):
        tracer.start_span(f"span {number}", attributes=attributes).end()
    assert exporter.export(ended) is SpanExportResult.SUCCESS
    return ended


def test_each_batch_is_masked_before_the_exporter_sees_it() -> None:
    inner = InMemorySpanExporter()
    redacting = RedactingExporter(inner, Redactor())
    clean = {"url.full": "https://example.com/a?b=1"}
    secret = {"url.full": "https://user:pw@example.com/a?sig=abc", "http.request.header.authorization": "x"}
    ended = _export_through(redacting, clean, secret)
    exported = inner.get_finished_spans()
    assert exported[0] is ended[0]  # nothing to mask: the span itself, no copy
    assert dict(exported[1].attributes or {}) == {
        "url.full": "https://REDACTED:REDACTED@example.com/a?sig=REDACTED",
        "http.request.header.authorization": REDACTED,
    }
    assert dict(ended[1].attributes or {}) == secret  # the recorded span is left as it was
    assert (redacting.redaction.redacted_spans, redacting.redaction.failed_spans) == (1, 0)


class _BrokenRedactor(Redactor):
    def redact_attributes(self, attributes: object) -> dict[str, AttributeValue] | None:  # type: ignore[override]
        raise RuntimeError("bug")


def test_remembered_clean_pairs_never_let_a_secret_through() -> None:
    """Spans whose attribute pairs the redactor already left unchanged skip the processor; any other pair,
    an event or a status description still goes through it, batch after batch."""
    inner = InMemorySpanExporter()
    redacting = RedactingExporter(inner, Redactor())
    clean = {"http.request.method": "GET", "url.full": "http://svc/a?page=2", "server.port": 8000}
    for _ in range(2):  # the second batch is answered from the remembered pairs
        ended = _export_through(redacting, clean, clean)
        assert all(a is b for a, b in zip(ended, inner.get_finished_spans()[-2:], strict=True))
    assert redacting.redaction.redacted_spans == 0
    secrets: list[dict[str, AttributeValue]] = [
        {**clean, "url.full": "http://u:pw@svc/a?page=2"},  # a known key with a new value
        {**clean, "db.password": 8000},  # a secret key with a value seen under another key
        {**clean, "note": "Bearer abcdefghijkl"},
    ]
    _export_through(redacting, clean, *secrets)
    exported = [dict(span.attributes or {}) for span in inner.get_finished_spans()[-4:]]
    assert exported[0] == clean
    assert exported[1]["url.full"] == "http://REDACTED:REDACTED@svc/a?page=2"
    assert exported[2]["db.password"] == REDACTED
    assert exported[3]["note"] == "Bearer REDACTED"
    assert redacting.redaction.redacted_spans == 3


def test_a_clean_span_with_a_secret_in_an_event_or_its_status_is_still_masked() -> None:
    inner = InMemorySpanExporter()
    redacting = RedactingExporter(inner, Redactor())
    provider = TracerProvider(resource=RESOURCE)
    kept = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = HopTracer(provider)
    attributes = {"http.request.method": "GET"}
    tracer.start_span("warm", attributes=attributes).end()
    with_event = tracer.start_span("event", attributes=attributes)
    with_event.add_event("retry", {"token": "t0ps3cret"})
    with_event.end()
    with_status = tracer.start_span("status", attributes=attributes)
    with_status.set_status(Status(StatusCode.ERROR, "GET http://u:pw@svc/ failed"))
    with_status.end()
    assert redacting.export(kept.get_finished_spans()) is SpanExportResult.SUCCESS
    warm, event, status = inner.get_finished_spans()
    assert warm.attributes == attributes
    assert dict(event.events[0].attributes or {}) == {"token": REDACTED}
    assert status.status.description == "GET http://REDACTED:REDACTED@svc/ failed"


def test_a_failing_redaction_exports_every_attribute_redacted() -> None:
    inner = InMemorySpanExporter()
    redacting = RedactingExporter(inner, _BrokenRedactor())
    _export_through(redacting, {"password.hint": "x", "count": 1})
    (exported,) = inner.get_finished_spans()
    assert dict(exported.attributes or {}) == {"password.hint": REDACTED, "count": REDACTED}
    assert redacting.redaction.failed_spans == 1


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in (
        "HOPTRACE_REDACTION",
        "HOPTRACE_METRICS_PORT",
        "HOPTRACE_METRICS_OTLP",
        "HOPTRACE_METRICS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


def _built() -> tuple[list[type], SpanExporter]:
    processors = build_span_processors(resolve_settings(), RESOURCE)
    batch = processors[-1]
    assert isinstance(batch, CountingBatchSpanProcessor)
    exporter = batch.span_exporter
    batch.shutdown()
    return [type(processor) for processor in processors], exporter


def test_the_bootstrap_pipeline_redacts_in_its_exporter(pipeline: pytest.MonkeyPatch) -> None:
    types, exporter = _built()
    assert types == [ExporterWarmUp, TenantSpanProcessor, RedMetricsSpanProcessor, CountingBatchSpanProcessor]
    assert isinstance(exporter, RedactingExporter)


def test_redaction_switched_off_exports_spans_as_recorded(
    pipeline: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline.setenv("HOPTRACE_REDACTION", "false")
    assert isinstance(_built()[1], LazyOtlpExporter)
    pipeline.setenv("HOPTRACE_REDACTION", "maybe")
    with caplog.at_level(logging.WARNING):
        _, exporter = _built()
    assert isinstance(exporter, RedactingExporter)  # a bad value falls back to the default, said once
    assert [r.getMessage() for r in caplog.records].count(
        "hoptrace: HOPTRACE_REDACTION='maybe' is not true/false; using the default (True)"
    ) == 1
