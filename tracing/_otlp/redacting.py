"""Redaction on the export thread: each batch is masked just before the OTLP exporter encodes it.

Why here, and not as a span processor on the request path: ``RedactionSpanProcessor`` runs once per span,
in the middle of the service's own work, where its code and rules are cold; measured in the demo services
(``bench/service_cost.py``), that made it one of the larger parts of tracing's CPU. On the export thread a
batch is redacted in one loop, off the request's latency. What is masked does not change: each span goes
through ``RedactionSpanProcessor``'s own ``on_end`` (its rules, its copy, its fail-closed fallback), into a
list instead of a downstream processor. Only what hoptrace exports is masked, as before: the tenant and RED
processors, and users' own processors, see spans as recorded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hoptrace.processors import RedactionSpanProcessor, Redactor


class _Into(SpanProcessor):
    """Collects the spans the redaction processor forwards."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class RedactingExporter(SpanExporter):
    """Hands ``exporter`` each batch with secrets masked by ``redactor`` (``RedactionSpanProcessor``'s
    rules and failure handling). Thread-safe; ``export`` never raises more than ``exporter``'s."""

    def __init__(self, exporter: SpanExporter, redactor: Redactor) -> None:
        self._exporter = exporter
        self._into = _Into()
        self.redaction = RedactionSpanProcessor(self._into, redactor=redactor)
        """The processor that masks (its counters say how many spans were masked or failed)."""
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):  # a lock held by another thread at fork would stay held
            os.register_at_fork(after_in_child=self._renew_lock)

    def _renew_lock(self) -> None:
        self._lock = threading.Lock()
        self._into.spans = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            for span in spans:
                self.redaction.on_end(span)
            masked, self._into.spans = self._into.spans, []
        return self._exporter.export(masked)

    def stop_retrying(self, budget_seconds: float) -> None:
        """Passed on to the wrapped exporter, when it has it (see ``CountingBatchSpanProcessor.shutdown``)."""
        stop = getattr(self._exporter, "stop_retrying", None)
        if callable(stop):
            stop(budget_seconds)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)
