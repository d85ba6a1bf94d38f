"""The OTLP exporters' own log records, counted instead of printed.

With the backend down, ``opentelemetry-exporter-otlp`` logs every retry ("Transient error ... retrying")
and every failed batch: 20-33 lines a minute per process, measured. hoptrace already says it once
("dropped N span(s) ...", see :mod:`hoptrace.tracing._pipeline`), so the exporters' WARNING and ERROR
records are counted (``exporter_log_records`` in ``hoptrace.tracing.counts()``) and the last one is kept
as the reason that line gives. DEBUG and INFO records pass through untouched.
"""

from __future__ import annotations

import logging

from hoptrace.tracing._counters import exporter_log_records

EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
"""The loggers the OTLP exporters write to (exporter-otlp 1.45). A filter applies to its own logger only,
not to children, hence the full list."""

_MAX_REASON = 240


class ExporterLogCounter(logging.Filter):
    """Swallows (and counts) WARNING-and-above records; remembers the last one's message. Never raises."""

    last_message: str = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exporter_log_records.record()
        try:
            ExporterLogCounter.last_message = record.getMessage()[:_MAX_REASON]
        except Exception:  # a record whose arguments do not format still counts
            ExporterLogCounter.last_message = str(record.msg)[:_MAX_REASON]
        return False


_counter = ExporterLogCounter()


def count_exporter_logs() -> None:
    """Install the counter on every OTLP exporter logger. Idempotent; never raises."""
    for name in EXPORTER_LOGGERS:
        exporter_logger = logging.getLogger(name)
        if _counter not in exporter_logger.filters:
            exporter_logger.addFilter(_counter)


def last_exporter_message() -> str:
    """The last exporter record counted (truncated), or ``""``."""
    return ExporterLogCounter.last_message
