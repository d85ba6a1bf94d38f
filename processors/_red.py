"""``RedMetricsSpanProcessor``: Tempo's spanmetrics (calls, latency histogram, exemplars) from finished spans.

The hot path (``on_end``) aggregates by hand instead of through the OpenTelemetry metrics SDK, which
costs about 18 µs per span here (DESIGN.md): one dict lookup keyed by a tuple of raw span fields (enum
*values*, since hashing an Enum member runs Python code), one bisect of the integer duration into the
14 fixed buckets, five list/int updates under one uncontended lock, and no allocation beyond the key.
Everything expensive (label formatting, name bounding, tenant validation) happens once per new key;
exemplar hex formatting and exposition happen at scrape time. bench/processors_overhead.py measures it.

Counts live in cells of a store (:mod:`hoptrace.processors._red_store`): process memory by default, or,
after :meth:`RedMetricsSpanProcessor.share_in`, a memory-mapped file (:mod:`hoptrace.processors._red_file`)
in a directory that all of a service's processes share, summed at scrape time. Recording costs the same
either way; in a shared file each bucket's exemplar is also written through, at most once a second.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Mapping
from typing import TYPE_CHECKING

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
from hoptrace.processors._red_store import (
    BUCKETS,
    EXEMPLAR_CELLS,
    FIRST_BUCKET,
    FIRST_EXEMPLAR,
    SEQUENCE,
    TOTAL,
    Cells,
    MemoryStore,
)
from hoptrace.processors._span_access import FAST as _FAST
from hoptrace.processors._span_access import ended_span_attributes
from hoptrace.processors._tenant import TENANT_KEY, validate_tenant

if TYPE_CHECKING:
    from hoptrace.processors._red_file import FileStore
    from hoptrace.processors._red_snapshot import SeriesSnapshot

logger = logging.getLogger(__name__)

LATENCY_BUCKETS: tuple[float, ...] = tuple(0.002 * 2**k for k in range(14))
"""Upper bounds (seconds) of the latency histogram: Tempo metrics-generator's defaults, 0.002·2^k, k=0..13."""

DEFAULT_MAX_SERIES = 2000
"""Default cardinality limit: series per metric, the overflow series included (as in OpenTelemetry)."""

_EXEMPLAR_INTERVAL_NS = 1_000_000_000  # write-through of exemplars to a shared file, per bucket
_NEVER: tuple[int, ...] = (2**63,) * BUCKETS  # exemplars due in a memory store: never (nothing to write)
_LOW_64 = 2**64 - 1
_BOUNDS_NS = tuple(2_000_000 * 2**k for k in range(len(LATENCY_BUCKETS)))  # exact, for integer bisect
_FIRST_BOUND_NS = _BOUNDS_NS[0]
_SERVER = SpanKind.SERVER.value
_UNSET = StatusCode.UNSET.value
_ERROR = StatusCode.ERROR.value


class _Series:
    # Counts are in ``cells`` (see _red_store); the latest exemplar of bucket i is (contexts[i],
    # durations[i], ends[i]): parallel lists, so recording one allocates no tuple. ``due[i]``: when bucket
    # i's exemplar is next written through to a shared store.
    __slots__ = ("cells", "contexts", "due", "durations", "ends", "labels")

    def __init__(self, labels: Mapping[str, str], cells: Cells, shared: bool) -> None:
        self.labels = labels
        self.cells = cells
        self.contexts: list[SpanContext | None] = [None] * BUCKETS
        self.durations = [0] * BUCKETS
        self.ends = [0] * BUCKETS
        self.due: list[int] | tuple[int, ...] = [0] * BUCKETS if shared else _NEVER


class RedMetricsSpanProcessor(SpanProcessor):
    """Aggregates finished spans into ``traces_spanmetrics_calls_total`` and ``traces_spanmetrics_latency``.

    Labels are ``service``, ``span_name``, ``span_kind``, ``status_code`` and ``tenant`` (the span's
    ``tenant.id`` attribute, validated; empty when absent or invalid). A SERVER span with status UNSET and
    an HTTP status of 5xx counts as ``STATUS_CODE_ERROR``. At most ``max_series`` series exist, the overflow
    series included; past that, spans are measured in the one series labelled
    ``otel_metric_overflow="true"`` and :attr:`overflowed_spans` counts them.

    Constructing it starts nothing: expose it with :class:`hoptrace.processors.RedMetricsCollector` /
    :func:`hoptrace.processors.start_metrics_endpoint`. For a service of several processes, each calls
    :meth:`share_in` with one directory, and the one serving ``/metrics`` reports their sum. ``on_end``
    never raises and takes one short lock; thread-safe. Raises ``ValueError`` for ``max_series < 2``.
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
        self._store: MemoryStore | FileStore = MemoryStore()
        self._service_cache: tuple[Resource | None, str] = (None, "")
        if hasattr(os, "register_at_fork"):
            # A fork while another thread holds the lock would leave the child's copy locked forever.
            renew = weakref.WeakMethod(self._after_fork_in_child)
            os.register_at_fork(after_in_child=lambda: (method := renew()) and method())

    @property
    def max_series(self) -> int:
        return self._max_series

    @property
    def shared_directory(self) -> str | None:
        """The directory this processor shares its series in (:meth:`share_in`), or ``None``."""
        return self._store.shared_directory

    @property
    def failed_spans(self) -> int:
        """Spans that could not be measured at all (no start or end time, or an internal error); in a
        shared directory, the sum over its processes."""
        return self._read()[1]

    @property
    def overflowed_spans(self) -> int:
        """Spans measured in the overflow series (counted there, never dropped); in a shared directory, the
        sum over its processes."""
        return sum(one.count for one in self.snapshot() if one.labels == OVERFLOW_LABELS)

    def share_in(self, directory: str) -> None:
        """Keep this process's series in a new file in ``directory`` from now on (series so far move there),
        and make :meth:`snapshot` return the sum over every process's file in that directory.

        For services run as several processes: each one shares in the same directory, and the one that
        serves ``/metrics`` reports the sum. Counts are in the file as soon as they are recorded, so a
        process that dies loses none. A process forked afterwards writes to a file of its own. Raises
        ``OSError`` if the file cannot be created (the processor then stays as it was). Thread-safe.
        """
        from hoptrace.processors._red_file import FileStore  # only now: mmap, json and a dataclass

        store = FileStore(directory)
        with self._lock:
            self._move_to(store)

    def on_end(self, span: ReadableSpan) -> None:
        # The hot path: kept flat on purpose (each call costs ~50 ns); see the module docstring.
        try:
            if _FAST:  # an ended span's fields never change: read them directly (see _span_access)
                start, end, name, context = span._start_time, span._end_time, span._name, span._context
                resource, kind, status = span._resource, span._kind._value_, span._status._status_code._value_
                raw = span._attributes
                attributes = raw._dict if raw.__class__ is BoundedAttributes else ended_span_attributes(span)
            else:
                start, end, name, context = span.start_time, span.end_time, span.name, span.context
                resource, kind, status = span.resource, span.kind._value_, span.status.status_code._value_
                attributes = ended_span_attributes(span)
            if start is None or end is None:
                self._failed()
                return
            cached_resource, service = self._service_cache  # one tuple: read and replaced atomically
            if resource is not cached_resource:
                service = service_of(resource.attributes)
                self._service_cache = (resource, service)
            if kind == _SERVER and status == _UNSET:
                code = attributes.get("http.response.status_code")
                if code.__class__ is int:  # the common case, decided here: no call
                    if 500 <= code <= 599:
                        status = _ERROR
                elif (code is not None or "http.status_code" in attributes) and is_server_error(attributes):
                    status = _ERROR
            tenant = attributes.get(TENANT_KEY)
            if tenant is not None and tenant.__class__ is not str:
                tenant = validate_tenant(tenant)  # not a string: counted as invalid, measured without tenant
            key = (service, name, kind, status, tenant)
            series = self._by_key.get(key)
            if series is None:
                series = self._series_for(key)
            duration = end - start
            if duration <= _FIRST_BOUND_NS:  # most spans: skips the bisect call (~40 ns)
                index = 0
                if duration < 0:
                    duration = 0
            else:
                index = bisect_left(_BOUNDS_NS, duration)
            lock = self._lock
            lock.acquire()  # not ``with``: its __exit__ call costs ~50 ns more
            try:
                cells = series.cells
                cells[FIRST_BUCKET + index] += 1
                cells[TOTAL] += duration
                series.contexts[index] = context
                series.durations[index] = duration
                series.ends[index] = end
                if end >= series.due[index]:  # only in a shared store, at most once a second per bucket
                    _write_exemplar(series, index, end)
            finally:
                lock.release()
        except Exception:
            if self._failed() == 1:
                logger.exception("hoptrace: RED metrics could not measure a span; further failures counted")

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        directory = self._store.shared_directory
        if directory is None:
            return
        # The parent's series stay in the parent's file; the child counts in a file of its own.
        self._by_key, self._by_labels, self._overflow = {}, {}, None
        from hoptrace.processors._red_file import FileStore

        try:
            self._store = FileStore(directory)
        except OSError as exc:
            logger.warning("hoptrace: RED metrics of process %d are not shared (%s)", os.getpid(), exc)
            self._store = MemoryStore()

    def _move_to(self, store: MemoryStore | FileStore) -> None:
        for series in [*self._by_labels.values(), *((self._overflow,) if self._overflow else ())]:
            cells = store.allocate(series.labels)
            for index, value in enumerate(series.cells):
                cells[index] = value
            series.cells = cells
            series.due = [0] * BUCKETS
        store.add_failed(self._store.failed)
        self._store = store

    def _failed(self) -> int:
        with self._lock:
            return self._store.add_failed()

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
            series = self._allocate(dict(zip(LABEL_NAMES, labels, strict=True)))
            self._by_labels[labels] = series
            return series
        if self._overflow is None:
            logger.warning(
                "hoptrace: RED metrics reached %d series; further label sets are measured in the series "
                'labelled otel_metric_overflow="true" (raise the limit or bound span names)',
                self._max_series,
            )
            self._overflow = self._allocate(dict(OVERFLOW_LABELS))
        return self._overflow

    def _allocate(self, labels: dict[str, str]) -> _Series:
        store = self._store
        return _Series(labels, store.allocate(labels), store.shared_directory is not None)

    def snapshot(self) -> list[SeriesSnapshot]:
        """Return every series, each copied atomically with respect to ``on_end``. In a shared directory
        (:meth:`share_in`), the series of all its processes, summed by label set. Thread-safe."""
        return self._read()[0]

    def local_snapshot(self) -> list[SeriesSnapshot]:
        """Return the series this process measured, even in a shared directory: what a per-process
        export (OTLP, where each process is its own resource) must send. Thread-safe."""
        return self._read(local=True)[0]

    def _read(self, *, local: bool = False) -> tuple[list[SeriesSnapshot], int]:
        from hoptrace.processors._red_snapshot import from_memory, merged  # read-time code, imported then

        with self._lock:
            directory = self._store.shared_directory
            if directory is None or local:
                series = [*self._by_labels.values(), *((self._overflow,) if self._overflow else ())]
                copies = [
                    (
                        one.labels,
                        tuple(one.cells),
                        tuple(zip(one.contexts, one.durations, one.ends, strict=True)),
                    )
                    for one in series
                ]
                return [from_memory(*copy) for copy in copies], self._store.failed
        from hoptrace.processors._red_file import read_directory

        entries, failed = read_directory(directory)
        return merged(entries), failed


def _write_exemplar(series: _Series, index: int, end: int) -> None:
    context = series.contexts[index]
    if context is None:
        return
    cells, at = series.cells, FIRST_EXEMPLAR + EXEMPLAR_CELLS * index
    series.due[index] = end + _EXEMPLAR_INTERVAL_NS  # type: ignore[index]  # a list in a shared store
    cells[SEQUENCE] += 1  # odd: readers of the file retry
    cells[at] = context.trace_id >> 64
    cells[at + 1] = context.trace_id & _LOW_64
    cells[at + 2] = context.span_id
    cells[at + 3] = series.durations[index]
    cells[at + 4] = end
    cells[SEQUENCE] += 1
