"""Exporting while the process exits: one attempt per batch, within a budget, so that a service whose
backend is down exits promptly.

The SDK's ``BatchSpanProcessor.shutdown`` joins its worker thread before it shuts the exporter down. With
the backend down, the worker is inside the OTLP exporter's retry loop (back-off 1, 2, 4 s ... up to
``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s by default), so the process waited for it: a service under
``hoptrace run`` took ~6.8 s to exit on SIGTERM. :func:`stop_retrying` is called first instead: the OTLP
exporter abandons the back-off in progress (the SDK's own "shutdown in progress" event) and every later
export makes one attempt, within what is left of the budget. Spans that cannot be sent are counted as lost
and said once, as any failed export is (``hoptrace: dropped N span(s) ...``).
"""

from __future__ import annotations

import logging
import threading

from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger("hoptrace.tracing")

EXIT_EXPORT_BUDGET_SECONDS = 3.0
"""How long the spans still queued when the process shuts down may take to be sent (on top of a send that
may already be in progress, bounded by the same budget): far more than a reachable backend needs, far less
than the exporter's retries."""


def stop_retrying(exporter: SpanExporter, timeout_seconds: float) -> bool:
    """Make ``exporter`` (the SDK's OTLP/HTTP or OTLP/gRPC span exporter, or hoptrace's subclasses of them)
    abandon a retry in progress and make one attempt per later export, each within ``timeout_seconds``.
    Returns whether it knew how (another exporter is left as it is). Never raises. Thread-safe: the
    attributes it sets are read once at the start of each export, and the event is the SDK's own."""
    try:
        holder: object = getattr(exporter, "_client", None)  # OTLP/HTTP: the SDK's _OTLPHTTPClient
        event = getattr(holder, "_shutdown_event", None)
        if not isinstance(event, threading.Event):
            holder, event = exporter, getattr(exporter, "_shutdown_in_progress", None)  # OTLP/gRPC
        timeout = getattr(holder, "_timeout", None)
        if not isinstance(event, threading.Event) or not isinstance(timeout, int | float):
            return False
        holder._timeout = max(0.0, min(float(timeout), timeout_seconds))  # type: ignore[attr-defined]
        event.set()
        return True
    except Exception as exc:  # another SDK: its exporter keeps its own retries
        logger.debug("hoptrace: cannot shorten the exporter's retries at exit", exc_info=exc)
        return False
