"""An index of the stored traces, so that a selective search reads only the traces it can match.

Per trace it keeps what searches filter on most: its time range, longest span, root service and name,
and postings (trace sets) for each service, span name, kind and status, plus the attributes that
queries compare (learned from the queries themselves, see :mod:`._index_plan`). For autocomplete it
keeps every attribute name and up to :data:`MAX_VALUES_PER_TAG` values per name, each with the
sequence number of the last trace that had it, so names and values of evicted traces drop out.

The store only queues trace ids (:meth:`TraceStore.watch`); the index reads the new spans of those
traces when a query next asks (:meth:`TraceIndex.refresh`), so ingest pays nothing. Thread safe.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from hoptrace.harness.backend._index_plan import (
    SCOPE_INTRINSICS,
    AllOf,
    Has,
    LongerThan,
    Posting,
    Requirement,
    has_floor,
    value_key,
)
from hoptrace.harness.backend._span_columns import ColumnsView, SpanColumns
from hoptrace.harness.backend._store import SpanOrigin, TraceStore

MAX_VALUES_PER_TAG = 1_000
_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUSES = ("unset", "ok", "error")


@dataclass(slots=True)
class TraceEntry:
    seq: int
    slot: int
    """The trace's slot in the span columns."""
    records: int = 0
    start: int = 2**63
    end: int = 0
    longest: int = 0
    postings: tuple[Posting, ...] = ()
    """The trace's postings, each the index's own key object (a tuple of pointers: ~8 bytes each)."""


def typed_value(value: Any) -> tuple[str, str] | None:
    """An attribute value as Tempo's typed tag value ``(type, text)``; floats as Go writes them
    (``NaN``, ``+Inf``); ``None`` for values autocomplete does not list."""
    if isinstance(value, Enum):
        return "keyword", str(value.value)
    if isinstance(value, bool):
        return "bool", "true" if value else "false"
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, float):
        if value != value:
            return "float", "NaN"
        if value in (float("inf"), float("-inf")):
            return "float", "+Inf" if value > 0 else "-Inf"
        return "float", repr(value)
    if isinstance(value, str):
        return "string", value
    return None


class TraceIndex:
    """The index of one :class:`TraceStore`; see the module docstring."""

    def __init__(self, store: TraceStore) -> None:
        # Weak: the store holds this index (through its watch callback), and the registry below maps
        # stores to indexes weakly; a strong reference back would keep every store alive forever.
        self._store = weakref.ref(store)
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[tuple[list[bytes], list[bytes]]] = []
        self._entries: OrderedDict[bytes, TraceEntry] = OrderedDict()
        self._postings: dict[Posting, set[bytes]] = {}
        self._canonical: dict[Posting, Posting] = {}
        self._seq = 0
        self._wanted: set[tuple[str, str]] = set()
        self._tag_names: dict[tuple[str, str], int] = {}
        self._tag_values: dict[tuple[str, str], dict[tuple[str, str], int]] = {}
        self._origin_seq: dict[int, int] = {}
        self._unread: dict[bytes, None] = {}
        self._columns = SpanColumns()
        store.watch(self._queue)
        with self._lock:
            for trace_id, _ in store.snapshot():
                self._touch(trace_id)

    def _queue(self, written: list[bytes], evicted: list[bytes]) -> None:
        with self._pending_lock:
            self._pending.append((written, evicted))

    # ---- keeping up
    def refresh(
        self, wanted: Iterable[tuple[str, str]] = (), tick: Callable[[], None] = lambda: None
    ) -> None:
        """Read what changed since the last call; learn the ``(scope, key)`` attributes in ``wanted``
        (indexing them over every stored trace the first time). Blocks; CPU bound; calls ``tick``
        between traces (the query gate's clock, which may pause or raise ``QueryTimeout``)."""
        with self._lock:
            new = set(wanted) - self._wanted
            if new:
                self._wanted |= new
                self._postings.clear()
                self._canonical.clear()
                self._columns.clear()
                self._origin_seq.clear()  # every trace is read again, its origins' attributes too
                for trace_id, entry in self._entries.items():
                    slot = self._columns.new_slot(trace_id, entry.seq)
                    self._entries[trace_id] = TraceEntry(entry.seq, slot)
                    self._unread[trace_id] = None
            with self._pending_lock:
                pending, self._pending = self._pending, []
            dirty: dict[bytes, None] = {}
            for written, evicted in pending:
                for trace_id in evicted:
                    self._drop(trace_id)
                    dirty.pop(trace_id, None)
                for trace_id in written:
                    if trace_id not in dirty:
                        self._touch(trace_id)
                        dirty[trace_id] = None
            dirty.update(self._unread)
            self._unread.clear()
            for done, trace_id in enumerate(dirty):
                try:
                    if done % 64 == 0:
                        tick()
                except BaseException:  # keep what is left for the next refresh
                    self._unread.update(dict.fromkeys(list(dirty)[done:]))
                    raise
                self._read(trace_id)
            if self._columns.needs_compaction():
                renumbered = self._columns.compact()
                for entry in self._entries.values():
                    entry.slot = renumbered[entry.slot]

    def columns(self) -> ColumnsView | None:
        """A copy of the span columns of every indexed trace (``None`` if they cannot answer: see
        :attr:`SpanColumns.irregular`). Call :meth:`refresh` first."""
        with self._lock:
            return None if self._columns.irregular else self._columns.view()

    def _touch(self, trace_id: bytes) -> None:
        self._seq += 1
        entry = self._entries.get(trace_id)
        if entry is None:
            self._entries[trace_id] = TraceEntry(self._seq, self._columns.new_slot(trace_id, self._seq))
            self._unread[trace_id] = None
        else:
            entry.seq = self._seq
            self._columns.set_seq(entry.slot, self._seq)
            self._entries.move_to_end(trace_id)

    def _drop(self, trace_id: bytes) -> None:
        entry = self._entries.pop(trace_id, None)
        self._unread.pop(trace_id, None)
        if entry is None:
            return
        self._columns.drop(entry.slot)
        for posting in entry.postings:
            traces = self._postings.get(posting)
            if traces is not None:
                traces.discard(trace_id)
                if not traces:
                    del self._postings[posting]
                    self._canonical.pop(posting, None)

    def _read(self, trace_id: bytes) -> None:
        entry = self._entries.get(trace_id)
        if entry is None:
            return
        store = self._store()
        records = store.records(trace_id) if store is not None else []
        if not records:
            self._drop(trace_id)
            return
        found: dict[Posting, None] = dict.fromkeys(entry.postings)
        for origin, data in records[entry.records :]:
            span = PbSpan.FromString(data)
            self._read_span(entry, origin, span, found)
            self._columns.add(entry.slot, SpanColumns.service_of(origin.resource_attributes), span, len(data))
        postings = self._postings
        for posting in found:
            traces = postings.get(posting)
            if traces is None:
                traces = postings[posting] = set()
            traces.add(trace_id)
        # Memory: one tuple of the index's key objects per trace, not a set of fresh tuples.
        entry.postings = tuple(self._canonical.setdefault(posting, posting) for posting in found)
        entry.records = len(records)

    def _read_span(
        self, entry: TraceEntry, origin: SpanOrigin, span: Any, found: dict[Posting, None]
    ) -> None:
        seq = entry.seq
        resource = origin.resource_attributes
        service = resource.get("service.name", "")
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        entry.start = min(entry.start, start)
        entry.end = max(entry.end, end)
        entry.longest = max(entry.longest, end - start)
        postings = [
            ("name", span.name),
            ("kind", _KINDS[span.kind] if 0 <= span.kind < len(_KINDS) else "unspecified"),
            ("status", _STATUSES[span.status.code] if 0 <= span.status.code < 3 else "unset"),
            ("attr", "resource", "service.name", value_key(service)),
        ]
        if not span.parent_span_id:
            postings += [("rootService", str(service)), ("rootName", span.name)]
        if self._origin_seq.get(id(origin)) != seq:  # once per origin per trace, not per span
            self._origin_seq[id(origin)] = seq
            for key, value in resource.items():
                self._tag_names[("resource", key)] = seq
                for member in value if isinstance(value, tuple) else (value,):
                    self._saw("resource", key, member, seq)
                    if ("resource", key) in self._wanted:
                        postings.append(("attr", "resource", key, value_key(member)))
            postings += self._read_scope(origin, seq)
        for attribute in span.attributes:
            key = attribute.key
            self._tag_names[("span", key)] = seq
            wanted = ("span", key) in self._wanted
            for value in _scalars(attribute.value):  # an array's members, as TraceQL compares them
                self._saw("span", key, value, seq)
                if wanted:
                    postings.append(("attr", "span", key, value_key(value)))
        for event in span.events:  # most spans have none
            self._saw("intrinsic", "event:name", event.name, seq)
        for owners, scope in ((span.events, "event"), (span.links, "link")):
            for owner in owners:
                for attribute in owner.attributes:
                    self._tag_names[(scope, attribute.key)] = seq
                    for value in _scalars(attribute.value):
                        self._saw(scope, attribute.key, value, seq)
        found.update(dict.fromkeys(postings))

    def _read_scope(self, origin: SpanOrigin, seq: int) -> list[Posting]:
        """The instrumentation scope's attribute names and values, and its name and version (kept as the
        ``intrinsic`` scope's ``instrumentation:name`` / ``instrumentation:version`` values); returns
        the postings of those that queries compare."""
        postings: list[Posting] = []
        name, version, attributes = origin.scope_fields
        for key, value in attributes.items():
            self._tag_names[("instrumentation", key)] = seq
            wanted = ("instrumentation", key) in self._wanted
            for member in value if isinstance(value, tuple) else (value,):
                self._saw("instrumentation", key, member, seq)
                if wanted:
                    postings.append(("attr", "instrumentation", key, value_key(member)))
        for key, text in zip(SCOPE_INTRINSICS, (name, version), strict=True):
            if text:
                self._saw("intrinsic", key, text, seq)
                if ("intrinsic", key) in self._wanted:
                    postings.append(("attr", "intrinsic", key, value_key(text)))
        return postings

    def _saw(self, scope: str, key: str, value: Any, seq: int) -> None:
        typed = typed_value(value)
        if typed is None:
            return
        values = self._tag_values.setdefault((scope, key), {})
        if typed in values or len(values) < MAX_VALUES_PER_TAG:
            values[typed] = seq

    # ---- answering
    def candidates(
        self, requirement: Requirement, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[bytes]:
        """Trace ids that may satisfy ``requirement`` and overlap ``[start_ns, end_ns]``, most recently
        written first. Call :meth:`refresh` first."""
        with self._lock:
            found = self._matching(requirement)
            if found is None:
                ordered = list(reversed(self._entries))
            else:
                entries = self._entries
                ordered = sorted(
                    (t for t in found if t in entries), key=lambda t: entries[t].seq, reverse=True
                )
            if start_ns is None and end_ns is None and not has_floor(requirement):
                return ordered
            low = start_ns if start_ns is not None else 0
            high = end_ns if end_ns is not None else 2**63
            entries = self._entries
            return [
                t
                for t in ordered
                if (entry := entries.get(t)) is not None
                and entry.end >= low
                and entry.start <= high
                and _long_enough(requirement, entry.longest)
            ]

    def _matching(self, requirement: Requirement) -> set[bytes] | None:
        if requirement is None or isinstance(requirement, LongerThan):
            return None
        if isinstance(requirement, Has):
            return self._postings.get(requirement.posting, set())
        parts = [self._matching(part) for part in requirement.parts]
        if isinstance(requirement, AllOf):
            known = sorted((p for p in parts if p is not None), key=len)
            if not known:
                return None
            result = set(known[0])
            for other in known[1:]:
                result &= other
            return result
        if any(part is None for part in parts):
            return None
        return set().union(*(part for part in parts if part is not None))

    def tag_names(self) -> dict[str, list[str]]:
        """Attribute names per scope of the stored traces: always ``resource`` and ``span``, and
        ``event``, ``link`` and ``instrumentation`` when they have any."""
        with self._lock:
            oldest = self._oldest_seq()
            names: dict[str, list[str]] = {"resource": [], "span": []}
            for (scope, key), seq in self._tag_names.items():
                if seq >= oldest:
                    names.setdefault(scope, []).append(key)
            return {scope: sorted(keys) for scope, keys in names.items()}

    def tag_values(self, scopes: Iterable[str], key: str) -> list[tuple[str, str]]:
        """Distinct ``(type, value)`` pairs of attribute ``key`` in ``scopes`` of the stored traces."""
        with self._lock:
            oldest = self._oldest_seq()
            found: set[tuple[str, str]] = set()
            for scope in scopes:
                values = self._tag_values.get((scope, key), {})
                found.update(typed for typed, seq in values.items() if seq >= oldest)
            return sorted(found)

    def intrinsic_values(self, name: str) -> list[str]:
        """Values of ``name``, ``kind``, ``status``, ``rootName`` or ``rootService`` in stored traces."""
        with self._lock:
            return sorted(posting[1] for posting in self._postings if posting[0] == name)

    def _oldest_seq(self) -> int:
        return next(iter(self._entries.values())).seq if self._entries else self._seq + 1


_SCALARS = {"string_value", "int_value", "double_value", "bool_value"}


def _scalars(value: Any) -> list[Any]:
    """An OTLP ``AnyValue``'s scalar, or an array's scalar members; ``[]`` for anything else."""
    which = value.WhichOneof("value")
    if which in _SCALARS:
        return [getattr(value, which)]
    if which == "array_value":
        return [
            getattr(member, kind)
            for member in value.array_value.values
            if (kind := member.WhichOneof("value")) in _SCALARS
        ]
    return []


def _long_enough(requirement: Requirement, longest: int) -> bool:
    """Only an AND of duration floors is checked; anything else was decided by postings or not at all."""
    if isinstance(requirement, LongerThan):
        return longest >= requirement.nanos if requirement.inclusive else longest > requirement.nanos
    if isinstance(requirement, AllOf):
        return all(_long_enough(part, longest) for part in requirement.parts)
    return True


_INDEXES: weakref.WeakKeyDictionary[TraceStore, TraceIndex] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def index_for(store: TraceStore) -> TraceIndex:
    """The store's index, built (from what the store holds) on first use. Thread safe."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(store)
        if index is None:
            index = _INDEXES[store] = TraceIndex(store)
        return index
