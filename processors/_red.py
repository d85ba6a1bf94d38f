"""``RedMetricsSpanProcessor``: Tempo's spanmetrics (calls, latency histogram, exemplars) from finished spans.

The hot path (``on_end``) aggregates by hand instead of through the OpenTelemetry metrics SDK, which
costs about 18 µs per span here (DESIGN.md): one dict lookup keyed by a tuple of raw span fields (enum
*values*, since hashing an Enum member runs Python code), one bisect of the integer duration into the
14 fixed buckets, five list/int updates under one uncontended lock, and no allocation beyond the key.
Everything expensive (label formatting, name bounding, tenant validation) happens once per new key;
exemplar hex formatting and exposition happen at scrape time. bench/processors_overhead.py measures it.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from hoptrace.processors._red_labels import (
    LABEL_NAMES,
    OVERFLOW_LABELS,
    SPAN_KIND_LABELS,
    STATUS_CODE_LABELS,
    bounded_span_name,
    is_server_error,
    service_of,
)
from hoptrace.processors._span_access import FAST as _FAST
from hoptrace.processors._span_access import ended_span_attributes
from hoptrace.processors._tenant import TENANT_KEY, validate_tenant

logger = logging.getLogger(__name__)

LATENCY_BUCKETS: tuple[float, ...] = tuple(0.002 * 2**k for k in range(14))
"""Upper bounds (seconds) of the latency histogram: Tempo metrics-generator's defaults, 0.002·2^k, k=0..13."""

DEFAULT_MAX_SERIES = 2000
"""Default cardinality limit: series per metric, the overflow series included (as in OpenTelemetry)."""

_NANOS_PER_SECOND = 1e9
_BOUNDS_NS = tuple(2_000_000 * 2**k for k in range(len(LATENCY_BUCKETS)))  # exact, for integer bisect
_SERVER = SpanKind.SERVER.value
_UNSET = StatusCode.UNSET.value
_ERROR = StatusCode.ERROR.value


@dataclass(frozen=True, slots=True)
class Exemplar:
    """The most recent span that fell in one bucket: its own trace and span ids, duration and end time."""

    trace_id: str
    """32 lowercase hex digits."""
    span_id: str
    """16 lowercase hex digits."""
    value: float
    """The span's duration in seconds."""
    time_unix_nano: int
    """When the span ended."""

    @property
    def timestamp(self) -> float:
        """When the span ended, in seconds since the epoch."""
        return self.time_unix_nano / _NANOS_PER_SECOND


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """One series, copied consistently: ``count == bucket_counts[-1]`` and bucket counts are cumulative."""

    labels: Mapping[str, str]
    count: int
    sum: float
    bucket_counts: tuple[int, ...]
    """Cumulative counts, one per bound in :data:`LATENCY_BUCKETS` and a last one for ``+Inf``."""
    exemplars: tuple[Exemplar | None, ...]
    """One slot per bucket (same indices as ``bucket_counts``)."""


class _Series:
    # Durations stay integer nanoseconds (exact sums, no float on the hot path). The exemplar of bucket i
    # is (contexts[i], durations[i], ends[i]): parallel lists, so recording one allocates no tuple.
    __slots__ = ("buckets", "contexts", "durations", "ends", "labels", "total_ns")

    def __init__(self, labels: Mapping[str, str]) -> None:
        size = len(LATENCY_BUCKETS) + 1
        self.labels = labels
        self.buckets = [0] * size
        self.total_ns = 0
        self.contexts: list[SpanContext | None] = [None] * size
        self.durations = [0] * size
        self.ends = [0] * size


class RedMetricsSpanProcessor(SpanProcessor):
    """Aggregates finished spans into ``traces_spanmetrics_calls_total`` and ``traces_spanmetrics_latency``.

    Labels are ``service``, ``span_name``, ``span_kind``, ``status_code`` and ``tenant`` (the span's
    ``tenant.id`` attribute, validated; empty when absent or invalid). A SERVER span with status UNSET and
    an HTTP status of 5xx counts as ``STATUS_CODE_ERROR``. At most ``max_series`` series exist, the overflow
    series included; past that, spans are measured in the one series labelled
    ``otel_metric_overflow="true"`` and :attr:`overflowed_spans` counts them.

    Constructing it starts nothing: expose it with :class:`hoptrace.processors.RedMetricsCollector` /
    :func:`hoptrace.processors.start_metrics_endpoint`. ``on_end`` never raises and takes one short lock;
    thread-safe. Raises ``ValueError`` for ``max_series < 2``.
    """

    def __init__(self, *, max_series: int = DEFAULT_MAX_SERIES) -> None:
        if max_series < 2:
            raise ValueError(
                f"max_series must be at least 2 (one regular and the overflow series), got {max_series}"
            )
        self._max_series = max_series
        self._lock = threading.Lock()
        self._by_key: dict[tuple[object, ...], _Series] = {}
        self._by_labels: dict[tuple[str, ...], _Series] = {}
        self._overflow: _Series | None = None
        self._service_cache: tuple[Resource | None, str] = (None, "")
        if hasattr(os, "register_at_fork"):
            # A fork while another thread holds the lock would leave the child's copy locked forever.
            renew = weakref.WeakMethod(self._renew_lock)
            os.register_at_fork(after_in_child=lambda: (method := renew()) and method())
        self.failed_spans = 0
        """Spans that could not be measured at all (no start or end time, or an internal error)."""

    @property
    def max_series(self) -> int:
        return self._max_series

    @property
    def overflowed_spans(self) -> int:
        """Spans measured in the overflow series (counted there, never dropped)."""
        with self._lock:
            return sum(self._overflow.buckets) if self._overflow is not None else 0

    def on_end(self, span: ReadableSpan) -> None:
        # The hot path: kept flat on purpose (each call costs ~50 ns); see the module docstring.
        try:
            if _FAST:  # an ended span's fields never change: read them directly (see _span_access)
                start, end, name, context = span._start_time, span._end_time, span._name, span._context
                resource, kind, status = span._resource, span._kind._value_, span._status.status_code._value_
            else:
                start, end, name, context = span.start_time, span.end_time, span.name, span.context
                resource, kind, status = span.resource, span.kind._value_, span.status.status_code._value_
            if start is None or end is None:
                self._failed()
                return
            cached_resource, service = self._service_cache  # one tuple: read and replaced atomically
            if resource is not cached_resource:
                service = service_of(resource.attributes)
                self._service_cache = (resource, service)
            if _FAST:
                raw = span._attributes
                attributes = raw._dict if raw.__class__ is BoundedAttributes else ended_span_attributes(span)
            else:
                attributes = ended_span_attributes(span)
            if kind == _SERVER and status == _UNSET and is_server_error(attributes):
                status = _ERROR
            tenant = attributes.get(TENANT_KEY)
            if tenant is not None and tenant.__class__ is not str:
                tenant = validate_tenant(tenant)  # not a string: counted as invalid, measured without tenant
            key = (service, name, kind, status, tenant)
            series = self._by_key.get(key)
            if series is None:
                series = self._series_for(key)
            duration = end - start
            if duration < 0:
                duration = 0
            index = bisect_left(_BOUNDS_NS, duration)
            with self._lock:
                series.buckets[index] += 1
                series.total_ns += duration
                series.contexts[index] = context
                series.durations[index] = duration
                series.ends[index] = end
        except Exception:
            if self._failed() == 1:
                logger.exception("hoptrace: RED metrics could not measure a span; further failures counted")

    def _renew_lock(self) -> None:
        self._lock = threading.Lock()

    def _failed(self) -> int:
        with self._lock:
            self.failed_spans += 1
            return self.failed_spans

    def _series_for(self, key: tuple[object, ...]) -> _Series:
        service, name, kind, status, tenant = key
        labels: tuple[str, ...] = (
            str(service),
            bounded_span_name(str(name)),
            SPAN_KIND_LABELS.get(kind, "SPAN_KIND_UNSPECIFIED"),  # type: ignore[call-overload]
            STATUS_CODE_LABELS.get(status, "STATUS_CODE_UNSET"),  # type: ignore[call-overload]
            "" if tenant is None else (validate_tenant(tenant) or ""),
        )
        with self._lock:
            series = self._by_labels.get(labels)
            if series is None:
                series = self._new_series(labels)
            # The key cache maps raw fields to series; bound it too, or raw names could grow it forever.
            if len(self._by_key) >= 4 * self._max_series:
                self._by_key.clear()
            self._by_key[key] = series
        return series

    def _new_series(self, labels: tuple[str, ...]) -> _Series:
        if len(self._by_labels) + 1 < self._max_series:
            series = _Series(dict(zip(LABEL_NAMES, labels, strict=True)))
            self._by_labels[labels] = series
            return series
        if self._overflow is None:
            logger.warning(
                "hoptrace: RED metrics reached %d series; further label sets are measured in the series "
                'labelled otel_metric_overflow="true" (raise the limit or bound span names)',
                self._max_series,
            )
            self._overflow = _Series(dict(OVERFLOW_LABELS))
        return self._overflow

    def snapshot(self) -> list[SeriesSnapshot]:
        """Return every series, each copied atomically with respect to ``on_end``. Thread-safe."""
        with self._lock:
            series = [*self._by_labels.values(), *((self._overflow,) if self._overflow else ())]
            copies = [
                (
                    one.labels,
                    tuple(one.buckets),
                    one.total_ns,
                    tuple(zip(one.contexts, one.durations, one.ends, strict=True)),
                )
                for one in series
            ]
        return [_snapshot(*copy) for copy in copies]


def _snapshot(
    labels: Mapping[str, str],
    buckets: tuple[int, ...],
    total_ns: int,
    exemplars: tuple[tuple[SpanContext | None, int, int], ...],
) -> SeriesSnapshot:
    return SeriesSnapshot(
        labels=labels,
        count=sum(buckets),
        sum=total_ns / _NANOS_PER_SECOND,
        bucket_counts=tuple(accumulate(buckets)),
        exemplars=tuple(_exemplar(*raw) for raw in exemplars),
    )


def _exemplar(context: SpanContext | None, duration_ns: int, end: int) -> Exemplar | None:
    if context is None or not context.is_valid:
        return None
    return Exemplar(
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        value=duration_ns / _NANOS_PER_SECOND,
        time_unix_nano=end,
    )
