"""The span pipeline's batch processor counts what it drops; the lazy exporter is built off the request path
(and is tested end to end)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hoptrace.tracing._counters import export_failures
from hoptrace.tracing._pipeline import CountingBatchSpanProcessor, ExporterWarmUp, LazyOtlpExporter
from hoptrace.tracing._settings import resolve_settings
from hoptrace.tracing._spans.hop import HopTracer


class _BlockedExporter(SpanExporter):
    """An exporter stuck like one facing a dead backend, until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        return SpanExportResult.FAILURE


@pytest.mark.parametrize("via", ["sdk", "hop"])
def test_spans_dropped_by_a_full_queue_are_counted(via: str) -> None:
    exporter = _BlockedExporter()
    processor = CountingBatchSpanProcessor(exporter, max_queue_size=4, max_export_batch_size=1)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = HopTracer(provider) if via == "hop" else provider.get_tracer("t")
    before = export_failures.spans
    try:
        for _ in range(20):
            with tracer.start_as_current_span("work"):
                pass
        # At most 4 queued and 1 held by the blocked export: at least 15 were dropped, each counted.
        assert export_failures.spans - before >= 15
    finally:
        exporter.release.set()
        provider.shutdown()


class _Collecting(SpanExporter):
    def __init__(self) -> None:
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.names += [span.name for span in spans]
        return SpanExportResult.SUCCESS


def test_hop_spans_are_batched_and_exported_in_order() -> None:
    exporter = _Collecting()
    processor = CountingBatchSpanProcessor(exporter, max_queue_size=64, max_export_batch_size=4)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = HopTracer(provider)
    for number in range(10):
        tracer.start_span(f"span {number}").end()
    assert provider.force_flush()
    assert exporter.names == [f"span {number}" for number in range(10)]
    provider.shutdown()
    tracer.start_span("after shutdown").end()  # the SDK's own path: not exported, nothing raised
    assert "after shutdown" not in exporter.names


class _RecordingLazyExporter(LazyOtlpExporter):
    """Records what the warm-up asks of it, instead of building an exporter."""

    def __init__(self) -> None:
        super().__init__(resolve_settings())
        self.asked: list[str] = []

    def build_before_exit(self) -> None:
        self.asked.append("build before exit")

    def warm_up(self) -> None:
        self.asked.append("warm up")


def test_the_exporter_is_not_built_while_spans_are_made_only_for_the_export_or_the_exit() -> None:
    exporter = _RecordingLazyExporter()
    provider = TracerProvider()
    provider.add_span_processor(ExporterWarmUp(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /orders"), tracer.start_as_current_span("GET"):
        pass
    assert exporter.asked == ["build before exit"] * 2  # the first export builds it, in the export thread
