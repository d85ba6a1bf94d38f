"""The bounded in-memory trace store.

Spans are kept as serialized OTLP protobuf, grouped by trace id, each with a shared :class:`SpanOrigin`
(its resource and instrumentation scope). Ingest therefore builds no Python object per span beyond one
bytes string and one tuple; model :class:`~hoptrace.harness._model.Span` objects are decoded when a query
asks.

Memory is bounded by a span count and a byte budget. To make room the store evicts whole traces, least
recently written first, and counts them. Traces written within ``min_retention_seconds`` are never
evicted: when only such traces are left, :meth:`TraceStore.add` raises :class:`StoreFull` so that the
sender retries later (OTLP's back-pressure) instead of a test losing the trace it is waiting for.

All methods are thread safe; none blocks beyond a short internal lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from hoptrace.harness._model import AttributeValue, Span
from hoptrace.harness.backend._decode import decode_attributes, decode_span, decoded_text
from hoptrace.harness.backend._errors import PayloadTooLarge, StoreFull
from hoptrace.harness.backend._query_gate import QueryGate

SPAN_OVERHEAD_BYTES = 60
"""Bytes counted per span on top of its protobuf size: the bytes object's header and allocator rounding,
and its two list slots (its origin's and its own)."""
TRACE_OVERHEAD_BYTES = 250
"""Bytes counted per stored trace: its id, its entry in the ordered index, its span list. With both,
the count matches the memory the stored spans take (tests/harness/backend/test_store_memory.py)."""


REPEAT_CHECK_SPANS = 4096
"""A trace written again is checked for byte-identical repeats of its spans up to this many spans; a longer
one is reported as maybe repeating them (see :meth:`TraceStore.watch`)."""


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Bounds of a :class:`TraceStore`. A bad value raises ``ValueError`` at construction."""

    max_spans: int = 1_000_000
    max_bytes: int = 512 * 1024 * 1024
    min_retention_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_spans < 1 or self.max_bytes < 1 or self.min_retention_seconds < 0:
            raise ValueError(f"store limits must be positive, got {self}")


class SpanOrigin:
    """The resource and instrumentation scope that a group of spans was sent with (serialized)."""

    # __dict__ holds the cached decodings; __weakref__ lets the receiver intern origins weakly.
    __slots__ = ("__dict__", "__weakref__", "resource", "resource_schema_url", "scope", "scope_schema_url")

    def __init__(
        self, resource: bytes, resource_schema_url: str, scope: bytes, scope_schema_url: str
    ) -> None:
        self.resource = resource
        self.resource_schema_url = resource_schema_url
        self.scope = scope
        self.scope_schema_url = scope_schema_url

    @cached_property
    def resource_attributes(self) -> dict[str, AttributeValue]:
        return decode_attributes(Resource.FromString(self.resource).attributes)

    @cached_property
    def scope_fields(self) -> tuple[str, str, dict[str, AttributeValue]]:
        """The scope's name, version and attributes, decoded once per origin (its spans share them)."""
        scope = InstrumentationScope.FromString(self.scope)
        return decoded_text(scope.name), decoded_text(scope.version), decode_attributes(scope.attributes)


Watcher = Callable[[list[bytes], list[bytes], Any, bool], None]
"""See :meth:`TraceStore.watch`."""
_TRACE_ID = itemgetter(0)
_ORIGIN_AND_SPAN = itemgetter(1, 2)

SpanRecord = tuple[SpanOrigin, bytes]
"""One stored span: where it came from and its serialized ``opentelemetry.proto.trace.v1.Span``."""


class _StoredTrace:
    __slots__ = ("byte_count", "last_write", "spans")

    def __init__(self) -> None:
        # Memory: origins and spans interleaved (origin, span, origin, span...), two list slots per span
        # instead of a slot and a record tuple (~64 bytes per span saved); records() pairs them again.
        self.spans: list[SpanOrigin | bytes] = []
        self.byte_count = 0
        self.last_write = 0.0

    @property
    def span_count(self) -> int:
        return len(self.spans) // 2

    def records(self) -> list[SpanRecord]:
        """The stored spans as records (a new list, safe to use without the store's lock)."""
        # The list only grows, under the store's lock, by extending it with one (origin, span) pair: one
        # step for the interpreter, so a copy taken without the lock holds whole pairs.
        spans = self.spans[:]
        return list(zip(spans[0::2], spans[1::2], strict=True))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class StoreStats:
    spans: int
    traces: int
    bytes: int
    evicted_spans: int
    evicted_traces: int


def normalize_trace_id(trace_id: str) -> bytes:
    """Parse a hex trace id as Tempo does: case-insensitive, leading zeros optional.

    Raises ``ValueError`` unless it is 1 to 32 hex characters.
    """
    if not 0 < len(trace_id) <= 32:
        raise ValueError(f"trace id must be 1 to 32 hex characters, got {len(trace_id)}")
    return bytes.fromhex(trace_id.rjust(32, "0"))


class TraceStore:
    """Spans grouped by trace id, bounded by :class:`StoreLimits`; see the module docstring."""

    def __init__(
        self,
        limits: StoreLimits | None = None,
        decoded_cache_spans: int = 50_000,
        query_gate: QueryGate | None = None,
    ) -> None:
        self.limits = limits or StoreLimits()
        self.query_gate = query_gate or QueryGate()
        """What every query over this store goes through, and every ingest request marks."""
        self._lock = threading.Lock()
        # Queries decode the same recent traces again and again (a test polls its trace); an LRU of
        # decoded traces, bounded in spans, saves that work without doubling the store's memory.
        self._decoded: OrderedDict[bytes, tuple[int, list[Span]]] = OrderedDict()
        self._decoded_spans = 0
        self._decoded_limit = decoded_cache_spans
        self._traces: OrderedDict[bytes, _StoredTrace] = OrderedDict()
        self._span_count = 0
        self._byte_count = 0
        self._evicted_spans = 0
        self._evicted_traces = 0
        self._watchers: list[Watcher] = []
        self._evicted_now: list[bytes] = []

    def watch(self, callback: Watcher) -> None:
        """Call ``callback(written_trace_ids, evicted_trace_ids, facts, repeated)`` after every change, in
        order (each written trace once per change; ``facts`` as :meth:`add` was given them; ``repeated``
        whether a span written may be byte-identical to one a trace already held, as exporters' retries
        send them: true if one is, or if a trace written again holds more than
        :data:`REPEAT_CHECK_SPANS` spans).

        It runs under the store's lock, so it must be quick and must not call the store (the trace index
        only queues the ids, see ``_trace_index``).
        """
        with self._lock:
            self._watchers.append(callback)

    def add(
        self,
        spans: Sequence[tuple[bytes, SpanOrigin, bytes]],
        *,
        replaying: bool = False,
        facts: Any = None,
    ) -> None:
        """Store ``(trace_id, origin, serialized_span)`` triples, all or none. ``facts``, what the spans
        give the tag catalogue if the caller knows (``_request_facts``), is passed on to the watchers.

        Raises :class:`PayloadTooLarge` if they exceed the whole store, :class:`StoreFull` if making room
        would evict a trace younger than the retention floor (unless ``replaying`` a log at start, when
        the oldest traces make room whatever their age).
        """
        # Per span only C-level steps (maps, a groupby on the trace id, slices): spans of a trace come
        # together in a request, and this runs for every span ingested.
        lengths = [len(span) for _, _, span in spans]
        span_bytes = sum(lengths) + SPAN_OVERHEAD_BYTES * len(spans)
        written = list(dict.fromkeys(map(_TRACE_ID, spans)))
        limits = self.limits
        most_bytes = span_bytes + TRACE_OVERHEAD_BYTES * len(written)
        if len(spans) > limits.max_spans or most_bytes > limits.max_bytes:
            raise PayloadTooLarge(
                f"{len(spans)} spans ({most_bytes} bytes) exceed the whole store "
                f"({limits.max_spans} spans, {limits.max_bytes} bytes); send smaller batches"
            )
        now = time.monotonic()
        with self._lock:
            traces = self._traces
            new_traces = sum(1 for trace_id in written if trace_id not in traces)
            added_bytes = span_bytes + TRACE_OVERHEAD_BYTES * new_traces
            self._make_room(len(spans), added_bytes, now, keep_recent=not replaying)
            created = at = 0
            repeated = False
            for trace_id, run in groupby(spans, _TRACE_ID):
                # A list of known length: the trace's list then grows to fit (an iterator would
                # over-allocate it: ~32 bytes more per single-span trace).
                pairs = list(chain.from_iterable(map(_ORIGIN_AND_SPAN, run)))
                stored = traces.get(trace_id)
                if stored is None:
                    stored = traces[trace_id] = _StoredTrace()
                    stored.byte_count = TRACE_OVERHEAD_BYTES
                    created += 1
                else:
                    if stored.last_write != now:
                        traces.move_to_end(trace_id)
                    # Only a trace written again can repeat a span (the receiver checks within a request):
                    # the stored spans' hashes are cached, so this costs a set of the trace's spans. A long
                    # trace written a span at a time would make that quadratic: past a bound, say maybe.
                    repeated = repeated or (
                        len(stored.spans) > 2 * REPEAT_CHECK_SPANS
                        or not set(stored.spans[1::2]).isdisjoint(pairs[1::2])
                    )
                stored.spans += pairs
                end = at + len(pairs) // 2
                stored.byte_count += sum(lengths[at:end]) + SPAN_OVERHEAD_BYTES * (end - at)
                at = end
                stored.last_write = now
            self._span_count += len(spans)
            self._byte_count += span_bytes + TRACE_OVERHEAD_BYTES * created
            if self._watchers:
                evicted, self._evicted_now = self._evicted_now, []
                for watcher in self._watchers:
                    watcher(written, evicted, facts, repeated)

    def _make_room(self, span_count: int, byte_count: int, now: float, keep_recent: bool) -> None:
        limits = self.limits
        while (
            self._span_count + span_count > limits.max_spans
            or self._byte_count + byte_count > limits.max_bytes
        ):
            trace_id, oldest = next(iter(self._traces.items()))
            age = now - oldest.last_write
            if keep_recent and age < limits.min_retention_seconds:
                raise StoreFull(
                    f"the trace store is full ({self._span_count} spans, {self._byte_count} bytes) and its "
                    f"oldest trace is younger than the {limits.min_retention_seconds} s retention floor",
                    retry_after_seconds=max(1, round(limits.min_retention_seconds - age + 0.5)),
                )
            del self._traces[trace_id]
            if self._watchers:
                self._evicted_now.append(trace_id)
            dropped = self._decoded.pop(trace_id, None)
            if dropped is not None:
                self._decoded_spans -= len(dropped[1])
            self._span_count -= oldest.span_count
            self._byte_count -= oldest.byte_count
            self._evicted_spans += oldest.span_count
            self._evicted_traces += 1

    def records(self, trace_id: bytes) -> list[SpanRecord]:
        """The stored spans of one trace in arrival order, without byte-identical repeats that exporter
        retries cause (a copy; empty if unknown)."""
        with self._lock:
            stored = self._traces.get(trace_id)
            records = stored.records() if stored is not None else []
        return unique_records(records)

    def stored_spans(self, trace_ids: list[bytes]) -> list[list[SpanOrigin | bytes]]:
        """Per trace id, its spans as stored: ``[origin, span, origin, span, ...]`` in arrival order,
        byte-identical repeats included (``[]`` if unknown); copies, taken under one acquisition of the
        lock (the trace index reads a batch of traces at once)."""
        with self._lock:
            traces = self._traces
            return [
                stored.spans[:] if (stored := traces.get(trace_id)) is not None else []
                for trace_id in trace_ids
            ]

    def joined_spans(self, trace_ids: list[bytes]) -> list[bytes]:
        """Per trace id, its serialized spans joined into one bytes string (``b""`` if unknown), under one
        acquisition of the lock: what a search looks for texts in (the spans' bytes touched once)."""
        with self._lock:
            traces = self._traces
            return [
                b"".join(stored.spans[1::2]) if (stored := traces.get(trace_id)) is not None else b""  # type: ignore[arg-type]
                for trace_id in trace_ids
            ]

    def snapshot(self) -> list[tuple[bytes, list[SpanRecord]]]:
        """Every trace's records, least recently written first (copies, safe to use without the lock).

        Records may include byte-identical repeats; :meth:`decoded` drops them.
        """
        with self._lock:
            traces = list(self._traces.items())
        # Outside the lock, so that ingest does not wait for the copy (see _StoredTrace.records).
        return [(trace_id, stored.records()) for trace_id, stored in traces]

    def get_trace(self, trace_id: str) -> list[Span]:
        """The spans of a trace decoded into the model, ordered by start time; ``[]`` if unknown.

        ``trace_id`` is hex as in :func:`normalize_trace_id` (which raises ``ValueError`` for bad ids).
        """
        return list(self.decoded(normalize_trace_id(trace_id)))

    def decoded(self, trace_id: bytes, records: list[SpanRecord] | None = None) -> list[Span]:
        """Like :meth:`get_trace` for a raw id, through the decode cache; do not mutate the result.

        Pass ``records`` when the caller already holds them (from :meth:`snapshot`).
        """
        records = self.records(trace_id) if records is None else unique_records(records)
        with self._lock:
            cached = self._decoded.get(trace_id)
            if cached is not None and cached[0] == len(records):
                self._decoded.move_to_end(trace_id)
                return cached[1]
        spans = decode_records(records)
        with self._lock:
            previous = self._decoded.pop(trace_id, None)
            if previous is not None:
                self._decoded_spans -= len(previous[1])
            self._decoded[trace_id] = (len(records), spans)
            self._decoded_spans += len(spans)
            while self._decoded_spans > self._decoded_limit and len(self._decoded) > 1:
                _, (_, dropped) = self._decoded.popitem(last=False)
                self._decoded_spans -= len(dropped)
        return spans

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(
                spans=self._span_count,
                traces=len(self._traces),
                bytes=self._byte_count,
                evicted_spans=self._evicted_spans,
                evicted_traces=self._evicted_traces,
            )


def unique_records(records: Sequence[SpanRecord]) -> list[SpanRecord]:
    """``records`` without byte-identical repeats (exporter retries), first occurrences in order."""
    return list({span: (origin, span) for origin, span in records}.values())


def decode_records(records: Sequence[SpanRecord]) -> list[Span]:
    """Decode stored spans into model spans ordered by start time (then span id, for stable output)."""
    spans = [
        decode_span(PbSpan.FromString(span), origin.resource_attributes, origin.scope_fields)
        for origin, span in unique_records(records)
    ]
    spans.sort(key=lambda span: (span.start_time_unix_nano, span.span_id))
    return spans
