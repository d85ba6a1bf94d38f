"""Redaction on the export thread: each batch is masked just before the OTLP exporter encodes it.

Why here, and not as a span processor on the request path: ``RedactionSpanProcessor`` runs once per span,
in the middle of the service's own work, where its code and rules are cold; measured in the demo services
(``bench/service_cost.py``), that made it one of the larger parts of tracing's CPU. On the export thread a
batch is redacted in one loop, off the request's latency. What is masked does not change: each span goes
through ``RedactionSpanProcessor``'s own ``on_end`` (its rules, its copy, its fail-closed fallback), into a
list instead of a downstream processor. Only what hoptrace exports is masked, as before: the tenant and RED
processors, and users' own processors, see spans as recorded.

Most spans have nothing to mask, and their attributes repeat (methods, routes, addresses, tenants): each
``(key, value)`` pair the redactor left unchanged is remembered (a bounded set), and a span whose every
attribute pair is remembered, with no event, no link and no status description, is exported as it is
without going through the processor (what the processor would have done: it forwards such a span
unchanged): ~13k CPU instructions per hop span instead of ~44k.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.types import AttributeValue

from hoptrace.processors import RedactionSpanProcessor, Redactor
from hoptrace.tracing._otlp.span_fields import span_fields


class _Into(SpanProcessor):
    """Collects the spans the redaction processor forwards."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


_CLEAN_PAIRS_LIMIT = 4096
"""Remembered clean attribute pairs; the set is emptied when full (it refills with what is current)."""
_SCALARS = frozenset((str, int, float, bool))


class RedactingExporter(SpanExporter):
    """Hands ``exporter`` each batch with secrets masked by ``redactor`` (``RedactionSpanProcessor``'s
    rules and failure handling). Thread-safe; ``export`` never raises more than ``exporter``'s."""

    def __init__(self, exporter: SpanExporter, redactor: Redactor) -> None:
        self._exporter = exporter
        self._redactor = redactor
        self._clean_pairs: set[tuple[str, AttributeValue]] = set()
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
            into = self._into.spans
            for span in spans:
                if self._nothing_to_mask(span):
                    into.append(span)
                else:
                    self.redaction.on_end(span)
            masked, self._into.spans = into, []
        return self._exporter.export(masked)

    def _nothing_to_mask(self, span: ReadableSpan) -> bool:
        """Whether redaction would forward ``span`` unchanged, known without running it: no event, link or
        status description, and only attribute pairs the redactor already left unchanged (a new scalar pair
        is asked once, and remembered when clean). ``False`` whenever in doubt."""
        try:
            fields = span_fields(span)
            if fields[8] or fields[10] or fields[12].description:  # events, links, status
                return False
            clean = self._clean_pairs
            for pair in fields[6].items():
                if pair not in clean:
                    key, value = pair
                    if value.__class__ not in _SCALARS:
                        return False
                    masked = self._redactor.redact_value(key, pair[1])
                    if masked is not value and masked != value:
                        return False
                    if len(clean) >= _CLEAN_PAIRS_LIMIT:
                        clean.clear()
                    clean.add(pair)
            return True
        except Exception:  # a span the processor's own path handles (and, failing, fails closed)
            return False

    def stop_retrying(self, budget_seconds: float) -> None:
        """Passed on to the wrapped exporter, when it has it (see ``CountingBatchSpanProcessor.shutdown``)."""
        stop = getattr(self._exporter, "stop_retrying", None)
        if callable(stop):
            stop(budget_seconds)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)
