"""``RedMetricsSpanProcessor``: Tempo's spanmetrics (calls, latency histogram, exemplars) from finished spans.

Spans are aggregated by hand instead of through the OpenTelemetry metrics SDK, which costs about 18 µs
per span here (DESIGN.md). ``on_end`` only appends the ended span to a queue (immutable from then on);
every 64 spans, one loop under one lock acquisition measures those waiting, in the order they ended: per
span, its series found by indexing nested levels of raw span fields (:mod:`hoptrace.processors._red_keys`;
enum *values*, since hashing an Enum member runs Python code), one bisect of the integer duration into the
14 fixed buckets (none under 2 ms), two count updates and the bucket's exemplar. Code that runs once per
span, between the SDK's own, runs cold: the same work in a tight loop costs about half (timed side by side
on bench/processors_overhead.py's workloads). Every read (scrape, snapshot, export, ``force_flush``,
``shutdown``) measures what waits first, so it misses nothing.
Everything expensive (label formatting, name bounding, tenant validation) happens once per new combination
of raw fields; exemplar hex formatting and exposition happen at scrape time.

Counts live in cells of a store (:mod:`hoptrace.processors._red_store`): process memory by default, or,
after :meth:`RedMetricsSpanProcessor.share_in`, a memory-mapped file (:mod:`hoptrace.processors._red_file`)
in a directory that all of a service's processes share, summed at scrape time. There each span is measured
as it ends (a batch of one), so a process that dies loses nothing, and each bucket's exemplar is also
written through, at most once a second.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from hoptrace.processors._red_keys import Names, SeriesKeyCache
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

_BATCH = 64  # ended spans measured together (in a shared file: 1, each as it ends)
_EXEMPLAR_INTERVAL_NS = 1_000_000_000  # write-through of exemplars to a shared file, per bucket
_LOW_64 = 2**64 - 1
_BOUNDS_NS = tuple(2_000_000 * 2**k for k in range(len(LATENCY_BUCKETS)))  # exact, for integer bisect
_FIRST_BOUND_NS = _BOUNDS_NS[0]
_CELL_BOUNDS_NS = (0, *_BOUNDS_NS)  # bisect_left of a duration over the first bound: its bucket's cell
_SERVER = SpanKind.SERVER.value
_UNSET = StatusCode.UNSET.value
_ERROR = StatusCode.ERROR.value


class _Series:
    # Counts are in ``cells`` (see _red_store); ``exemplars[cell]`` is the latest (span context, duration,
    # end) of the bucket counted in ``cells[cell]`` (slot 0 unused: one index for both). In a shared store,
    # ``due[cell]`` says when that bucket's exemplar is next written through to the file.
    __slots__ = ("cells", "due", "exemplars", "labels")

    def __init__(self, labels: Mapping[str, str], cells: Cells) -> None:
        self.labels = labels
        self.cells = cells
        self.exemplars: list[tuple[SpanContext | None, int, int] | None] = [None] * (FIRST_BUCKET + BUCKETS)
        self.due = [0] * (FIRST_BUCKET + BUCKETS)


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
    never raises nor blocks: it queues the span, and measures the queue every 64 spans (each span at once
    in a shared directory); every read measures the queue first. Thread-safe. Raises ``ValueError`` for
    ``max_series < 2``.
    """

    def __init__(self, *, max_series: int = DEFAULT_MAX_SERIES) -> None:
        if max_series < 2:
            raise ValueError(
                f"max_series must be at least 2 (one regular and the overflow series), got {max_series}"
            )
        self._max_series = max_series
        self._lock = threading.Lock()
        self._by_fields: SeriesKeyCache[_Series] = SeriesKeyCache(4 * max_series)  # raw span fields
        self._by_labels: dict[tuple[str, ...], _Series] = {}
        self._overflow: _Series | None = None
        self._store: MemoryStore | FileStore = MemoryStore()
        # The resource seen last, its service label and that service's levels of the key cache.
        self._service_cache: tuple[Resource | None, str, Names] = (None, "", self._by_fields.names_of(""))
        self._pending: list[ReadableSpan] = []  # ended, not measured yet: on_end appends
        self._batch = _BATCH
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
        self._measure_pending(wait=True)
        with self._lock:
            self._move_to(store)
            self._batch = 1  # counts in the file as each span ends: a process that dies loses none

    def on_end(self, span: ReadableSpan) -> None:
        # The hot path: keep the span; every ``_batch`` spans, measure those waiting in one tight loop
        # (see the module docstring). A read measures what waits first, so it misses nothing.
        try:
            pending = self._pending
            pending.append(span)
            if len(pending) >= self._batch:  # _measure_pending, inlined: one call less per span when shared
                lock = self._lock
                while pending and lock.acquire(False):
                    try:
                        self._measure_waiting()
                    finally:
                        lock.release()
        except Exception:
            if self._failed() == 1:
                logger.exception("hoptrace: RED metrics could not measure a span; further failures counted")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Measure the ended spans still waiting to be measured. Returns ``True``."""
        self._measure_pending(wait=True)
        return True

    def shutdown(self) -> None:
        """Measure the ended spans still waiting to be measured; the series stay readable."""
        self._measure_pending(wait=True)

    def _measure_pending(self, *, wait: bool = False) -> None:
        """Measure every span waiting, in the order they ended (exemplars: the latest per bucket).

        Unless ``wait``, it leaves them to a thread measuring them now (or to this one, when a log call
        below ends a span): whoever holds the lock looks again after releasing it, so none is left behind.
        """
        lock = self._lock
        while self._pending and lock.acquire(wait):
            try:
                self._measure_waiting()
            finally:
                lock.release()

    def _measure_waiting(self) -> None:
        # Kept flat on purpose: each bytecode here runs once per span. An ended SDK span's fields never
        # change: they are read directly (see _span_access); a span these reads do not fit takes
        # _measure_slowly. The lock is held; on_end may append meanwhile (after the spans taken here).
        pending = self._pending
        count = len(pending)
        batch = pending[:count]
        del pending[:count]
        shared = self._store.shared_directory is not None
        if not _FAST:
            for span in batch:
                self._measure_slowly(span, shared)
            return
        cached_resource, service, names = self._service_cache
        # Module constants as locals: a local costs less to load than a global, once per span each.
        server, unset, tenant_key, first_bound, first_bucket, total = (
            _SERVER,
            _UNSET,
            TENANT_KEY,
            _FIRST_BOUND_NS,
            FIRST_BUCKET,
            TOTAL,
        )
        for span in batch:
            try:
                try:
                    # A span without times (or attributes) raises here and takes _measure_slowly.
                    end: int = span._end_time  # type: ignore[assignment]
                    duration = end - span._start_time  # type: ignore[operator]
                    attributes = span._attributes._dict  # type: ignore[union-attr]
                    kind = span._kind._value_
                    status = span._status._status_code._value_
                    if kind == server and status == unset:
                        code = attributes.get("http.response.status_code")
                        if code.__class__ is int:  # the common case, decided here: no call
                            if 500 <= code <= 599:
                                status = _ERROR
                        elif (code is not None or "http.status_code" in attributes) and is_server_error(
                            attributes
                        ):
                            status = _ERROR
                    if span._resource is not cached_resource:
                        cached_resource = span._resource
                        service = service_of(cached_resource.attributes)
                        names = self._by_fields.names_of(service)
                        self._service_cache = (cached_resource, service, names)
                    # The tenant as it is: a new combination's labels validate it (_series_for).
                    name = span._name
                    tenant = attributes.get(tenant_key)
                    try:
                        series = names[name][tenant][kind][status]  # see _red_keys
                    except KeyError:
                        series = None
                    if series is None:
                        series = self._series_for(service, name, kind, status, tenant)
                        names = self._by_fields.names_of(service)  # a new one if the cache started again
                        self._service_cache = (cached_resource, service, names)
                    if duration <= first_bound:  # most spans: skips the bisect call
                        cell = first_bucket
                        if duration < 0:
                            duration = 0
                    else:
                        cell = bisect_left(_CELL_BOUNDS_NS, duration)
                except Exception:
                    self._measure_slowly(span, shared)
                    continue
                # _record, inlined: a call per span costs more than the rest of these lines.
                cells = series.cells
                cells[cell] += 1
                cells[total] += duration
                series.exemplars[cell] = (span._context, duration, end)
                if shared and end >= series.due[cell]:  # at most once a second per bucket
                    _write_exemplar(series, cell, end)
            except Exception:
                self._count_failure()

    def _count_failure(self) -> None:
        if self._store.add_failed() == 1:
            logger.exception("hoptrace: RED metrics could not measure a span; further failures counted")

    def _measure_slowly(self, span: ReadableSpan, shared: bool) -> None:
        """Measure ``span`` through the public span API; a span without start or end time is counted as
        failed. The lock is held."""
        try:
            start, end = span.start_time, span.end_time
            if start is None or end is None:
                self._store.add_failed()
                return
            attributes = ended_span_attributes(span)
            kind, status = span.kind._value_, span.status.status_code._value_
            if kind == _SERVER and status == _UNSET and is_server_error(attributes):
                status = _ERROR
            tenant = attributes.get(TENANT_KEY)
            if tenant is not None and tenant.__class__ is not str:
                tenant = validate_tenant(tenant)  # counted as invalid, measured without tenant
            service, name = service_of(span.resource.attributes), span.name
            series = self._by_fields.get(service, name, tenant, kind, status) or self._series_for(
                service, name, kind, status, tenant
            )
            duration = max(end - start, 0)
            cell = FIRST_BUCKET if duration <= _FIRST_BOUND_NS else bisect_left(_CELL_BOUNDS_NS, duration)
            _record(series, cell, duration, end, span.context, shared)
        except Exception:
            self._count_failure()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        directory = self._store.shared_directory
        if directory is None:
            return
        # The parent's series stay in the parent's file; the child counts in a file of its own.
        self._by_labels, self._overflow = {}, None
        self._by_fields.clear()
        self._service_cache = (None, "", self._by_fields.names_of(""))
        self._pending = []  # the parent measures the spans that waited there
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
        store.add_failed(self._store.failed)
        self._store = store

    def _failed(self) -> int:
        with self._lock:
            return self._store.add_failed()

    def _series_for(self, service: str, name: object, kind: int, status: int, tenant: object) -> _Series:
        """The series of raw span fields not cached yet (or dropped from the cache). The lock is held."""
        labels: tuple[str, ...] = (
            str(service),
            bounded_span_name(str(name)),
            SPAN_KIND_LABELS.get(kind, "SPAN_KIND_UNSPECIFIED"),
            STATUS_CODE_LABELS.get(status, "STATUS_CODE_UNSET"),
            "" if tenant is None else (validate_tenant(tenant) or ""),
        )
        series = self._by_labels.get(labels)
        if series is None:
            series = self._new_series(labels)
        self._by_fields.remember(service, name, tenant, kind, status, series)
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
        return _Series(labels, store.allocate(labels))

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

        self._measure_pending(wait=True)
        with self._lock:
            directory = self._store.shared_directory
            if directory is None or local:
                series = [*self._by_labels.values(), *((self._overflow,) if self._overflow else ())]
                copies = [
                    (one.labels, tuple(one.cells), tuple(one.exemplars[FIRST_BUCKET:])) for one in series
                ]
                return [from_memory(*copy) for copy in copies], self._store.failed
        from hoptrace.processors._red_file import read_directory

        entries, failed = read_directory(directory)
        return merged(entries), failed


def _record(
    series: _Series, cell: int, duration: int, end: int, context: SpanContext | None, shared: bool
) -> None:
    cells = series.cells
    cells[cell] += 1
    cells[TOTAL] += duration
    series.exemplars[cell] = (context, duration, end)
    if shared and end >= series.due[cell]:  # at most once a second per bucket
        _write_exemplar(series, cell, end)


def _write_exemplar(series: _Series, cell: int, end: int) -> None:
    exemplar = series.exemplars[cell]
    if exemplar is None:
        return
    context, duration, _ = exemplar
    if context is None:
        return
    cells, at = series.cells, FIRST_EXEMPLAR + EXEMPLAR_CELLS * (cell - FIRST_BUCKET)
    series.due[cell] = end + _EXEMPLAR_INTERVAL_NS
    cells[SEQUENCE] += 1  # odd: readers of the file retry
    cells[at] = context.trace_id >> 64
    cells[at + 1] = context.trace_id & _LOW_64
    cells[at + 2] = context.span_id
    cells[at + 3] = duration
    cells[at + 4] = end
    cells[SEQUENCE] += 1
