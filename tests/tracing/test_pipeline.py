"""The span pipeline's batch processor counts what it drops (the lazy exporter is tested end to end)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hoptrace.tracing._counters import export_failures
from hoptrace.tracing._pipeline import CountingBatchSpanProcessor


class _BlockedExporter(SpanExporter):
    """An exporter stuck like one facing a dead backend, until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        return SpanExportResult.FAILURE


def test_spans_dropped_by_a_full_queue_are_counted() -> None:
    exporter = _BlockedExporter()
    processor = CountingBatchSpanProcessor(exporter, max_queue_size=4, max_export_batch_size=1)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    before = export_failures.spans
    try:
        for _ in range(20):
            with provider.get_tracer("t").start_as_current_span("work"):
                pass
        # At most 4 queued and 1 held by the blocked export: at least 15 were dropped, each counted.
        assert export_failures.spans - before >= 15
    finally:
        exporter.release.set()
        provider.shutdown()
