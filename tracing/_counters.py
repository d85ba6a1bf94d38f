"""Problems caused by what callers send (or by a backend that is down): said once, then counted.

Code inside a user's service must not let untrusted input, or an outage, fill its log. Each kind of problem
has one :class:`OnceThenCounted`: the first occurrence logs one WARNING line that never quotes the input,
every occurrence is counted. :func:`counts` reads them all (the ``hoptrace.tracing.counts`` API).
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("hoptrace.tracing")


class OnceThenCounted:
    """A process-wide counter that logs its first increment once (never, when ``message`` is ``None``).
    Thread-safe; never raises."""

    def __init__(self, name: str, message: str | None) -> None:
        self.name = name
        self._message = message
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def record(self, amount: int = 1) -> None:
        """Add ``amount``; the first call logs ``hoptrace: <message>; further ones are only counted``."""
        with self._lock:
            first = self._count == 0
            self._count += amount
        if first and self._message is not None:
            logger.warning("hoptrace: %s; further ones are only counted", self._message)


untrusted_baggage = OnceThenCounted(
    "untrusted_baggage",
    "dropped the W3C baggage of a request from outside (edge rule: HOPTRACE_EDGE, HOPTRACE_TENANT_SECRET)",
)
malformed_baggage = OnceThenCounted(
    "malformed_baggage", "dropped malformed or oversized W3C baggage list-members"
)
malformed_trace_context = OnceThenCounted(
    "malformed_trace_context", "ignored a malformed traceparent/tracestate and started a new trace"
)
untrusted_tenants = OnceThenCounted(
    "untrusted_tenants",
    "dropped a tenant whose signature is missing or wrong (HOPTRACE_TENANT_SECRET)",
)
# Silent: the pipeline's own "dropped N span(s)" line is the one warning an outage gets.
exporter_log_records = OnceThenCounted("exporter_log_records", None)

_ALL = (
    untrusted_baggage,
    malformed_baggage,
    malformed_trace_context,
    untrusted_tenants,
    exporter_log_records,
)


class ExportFailures:
    """Counts spans the exporter could not deliver; logs the first failure once. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans = 0

    @property
    def spans(self) -> int:
        return self._spans

    def record(self, count: int, reason: str) -> None:
        with self._lock:
            first = self._spans == 0
            self._spans += count
        if first:
            logger.warning("hoptrace: dropped %d span(s): %s; further drops are only counted", count, reason)


export_failures = ExportFailures()
"""Process-wide count of spans dropped because the OTLP export failed."""


def counts() -> dict[str, int]:
    """How often each problem happened in this process, by name, plus ``dropped_spans`` (export failures).

    Names: ``untrusted_baggage``, ``malformed_baggage``, ``malformed_trace_context``, ``untrusted_tenants``,
    ``exporter_log_records``, ``dropped_spans``. Never raises; thread-safe."""
    result = {counter.name: counter.count for counter in _ALL}
    result["dropped_spans"] = export_failures.spans
    return result
