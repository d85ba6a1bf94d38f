"""An index of the stored traces, so that a selective search reads only the traces it can match.

Per trace it keeps what searches filter on most: its time range and longest span, and postings for each
service, span name, kind and status, root service and name, and the attributes that queries compare
(:mod:`._index_plan`). Each trace also keeps the postings of every other attribute it has, unlisted, so
that the first query on an attribute learns it from them. For autocomplete it keeps attribute names and
values (:mod:`._tag_catalog`), and for TraceQL metrics a row of columns per span (:mod:`._span_columns`).
What a trace gives is worked out once per trace shape (:mod:`._trace_shapes`): traces of one shape share
one postings tuple, and postings list those tuples' holders (:mod:`._index_postings`). A trace read for
the first time is read with the span scanner, a batch at once (:mod:`._scanned_traces`); more spans of a
trace already read are parsed one by one.

The store only queues trace ids, with the tag facts the receiver worked out of each request
(:meth:`TraceStore.watch`); the index reads the new spans of those traces in the background while ingest
pauses (:mod:`._index_keeper`), or when a query asks (:meth:`TraceIndex.refresh`). Until then, tag names
and values come from those facts (:mod:`._unread_catalog`), and searches that can tell a trace from its
bytes, or that those facts rule out, list the traces not read yet (:meth:`TraceIndex.split_candidates`,
:mod:`._unread_search`), and metrics count them from the rows the receiver worked out of each request
(:meth:`TraceIndex.columns_now`).
Thread safe.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

import numpy as np
import numpy.typing as npt

from hoptrace.harness.backend._attribute_facts import (
    typed_value,
)
from hoptrace.harness.backend._index_plan import AllOf, LongerThan, Posting, Requirement, has_floor
from hoptrace.harness.backend._index_postings import HolderPostings
from hoptrace.harness.backend._lean_span import LeanSpan
from hoptrace.harness.backend._pending_narrowing import PendingNarrowing
from hoptrace.harness.backend._pending_rows import (
    IngestFacts,
    PendingRows,
    PendingTraces,
    columns_with_pending,
)
from hoptrace.harness.backend._scanned_traces import NewTraces, quick_signatures, scan_new_traces
from hoptrace.harness.backend._span_columns import ColumnsView, SpanColumns
from hoptrace.harness.backend._span_keys import SpanKeys
from hoptrace.harness.backend._store import SpanOrigin, SpanRecord, TraceStore, unique_records
from hoptrace.harness.backend._tag_catalog import MAX_VALUES_PER_TAG, TagCatalog
from hoptrace.harness.backend._trace_shapes import Shape, TraceShapes, signature_of
from hoptrace.harness.backend._unread_catalog import UnreadCatalog

__all__ = ["TraceEntry", "TraceIndex", "index_for", "typed_value"]
_BATCH = 256
"""Traces read at once (and between two ticks of a query's clock): a few milliseconds; the scanner reads
spans in lockstep, which pays off from a few hundred spans on."""
_UINT64_MAX = 2**64 - 1
ALWAYS_WANTED = {("resource", "service.name")}
"""Attributes with postings from the start (Grafana filters on the service first of all)."""


@dataclass(slots=True)
class TraceEntry:
    seq: int
    slot: int
    """The trace's slot in the span columns."""
    records: int = 0
    postings: tuple[Posting, ...] = ()
    """The trace's postings, each the index's own key object (a tuple of pointers: ~8 bytes each)."""


class TraceIndex:
    """The index of one :class:`TraceStore`; see the module docstring."""

    def __init__(self, store: TraceStore) -> None:
        # Weak: the store holds this index (through its watch callback), and the registry below maps
        # stores to indexes weakly; a strong reference back would keep every store alive forever.
        self._store = weakref.ref(store)
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[tuple[list[bytes], list[bytes], PendingRows | None]] = []
        """What the store reported and the index has not taken yet: per change, the traces written and
        evicted, and the rows of the spans written (:mod:`._pending_rows`) if the receiver worked them out."""
        self._unread_tags = UnreadCatalog()
        """Tag names and values of the batches not read yet (under ``_pending_lock``)."""
        self._taken = 0
        """The last batch taken from ``_pending``."""
        self._entries: OrderedDict[bytes, TraceEntry] = OrderedDict()
        self._postings = HolderPostings()
        self._seq = 0
        self._wanted: set[tuple[str, str]] = set(ALWAYS_WANTED)
        self._tags = TagCatalog()
        """Its overflowed attributes have more values than autocomplete keeps: traces read since hold no
        postings of them, so learning one means reading every trace again."""
        self._shapes = TraceShapes()
        self._unread: dict[bytes, None] = {}
        """Traces with spans not read yet, in sequence order (least recently written first)."""
        self._columns = SpanColumns()
        self._narrowing = PendingNarrowing()
        """Which unread traces a search may match, from the rows of ``_pending`` (see its docstring)."""
        self._with_pending: tuple[ColumnsView, list[Any], ColumnsView] | None = None
        """The last :meth:`columns_now` answer laid out from pending rows: the columns and pending list it
        was laid out from, and the view."""
        self._recent: tuple[list[bytes], npt.NDArray[np.int64] | None] | None = None
        """Every trace id, newest first, with their slots once asked for (see :meth:`_recent_order`)."""
        store.watch(self._queue)
        with self._lock:
            for trace_id, _ in store.snapshot():
                self._touch(trace_id)
            if self._unread:
                with self._pending_lock:
                    self._unread_tags.note(None)  # stored before the index: not catalogued

    def _queue(
        self, written: list[bytes], evicted: list[bytes], facts: IngestFacts | None, repeated: bool
    ) -> None:
        rows = facts.rows if facts is not None and not repeated else None
        with self._pending_lock:
            self._pending.append((written, evicted, rows))
            self._narrowing.add(rows)
            self._unread_tags.note(facts.tags if facts is not None else None)

    @property
    def span_keys(self) -> SpanKeys:
        """What numbers the span columns' keys (the receiver numbers pending rows' keys with it)."""
        return self._columns.keys

    # ---- keeping up
    @property
    def store(self) -> TraceStore | None:
        """The indexed store (``None`` once it is gone)."""
        return self._store()

    def refresh(
        self,
        wanted: Iterable[tuple[str, str]] = (),
        tick: Callable[[], None] = lambda: None,
        budget: int | None = None,
    ) -> bool:
        """Read what changed since the last call (if ``budget`` is given, the traces of the store's first
        reports that hold that many, so that a step of the index keeper holds the lock briefly);
        learn the ``(scope, key)`` attributes in ``wanted``. Returns whether anything is left to read.
        Blocks; CPU bound; calls ``tick`` between batches of traces (the query gate's clock, which may
        pause or raise ``QueryTimeout``)."""
        tick()  # a query past its deadline stops here, whether or not there is anything to read
        with self._lock:
            self._want(wanted)
            taken = self._take_pending(budget)
            unread = self._unread
            # Every trace taken is read in this call, so that only a query that timed out (or reading
            # everything again) leaves traces unread: metrics lay the reports not taken after the columns.
            limit = None if budget is None else max(budget, taken)
            if limit is None or len(unread) <= limit:
                ordered = list(unread)
                unread.clear()
            else:  # the first ones only, in time proportional to the budget
                ordered = list(islice(unread, limit))
                for trace_id in ordered:
                    del unread[trace_id]
            for done in range(0, len(ordered), _BATCH):
                try:
                    tick()
                except BaseException:  # keep what is left for the next refresh (in sequence order)
                    self._unread = {**dict.fromkeys(ordered[done:]), **self._unread}
                    raise
                self._read(ordered[done : done + _BATCH])
            self._compact_if_due()
            if self._unread:
                return True
            with self._pending_lock:  # every batch taken is read: its tags are in the index's catalogue
                self._unread_tags.read_through(self._taken)
                return bool(self._pending)

    def learn(self, wanted: Iterable[tuple[str, str]], tick: Callable[[], None] = lambda: None) -> bool:
        """Learn the ``(scope, key)`` attributes in ``wanted`` from what is read (as :meth:`refresh`),
        reading nothing new; returns whether anything is left to read. Quick: what the store reported is
        left for the next :meth:`refresh` (:meth:`split_candidates` lists it)."""
        tick()
        with self._lock:
            self._want(wanted)
            with self._pending_lock:
                return bool(self._unread or self._pending)

    def _want(self, wanted: Iterable[tuple[str, str]]) -> None:
        new = set(wanted) - self._wanted
        if new:
            self._wanted |= new
            self._shapes.forget()
            if new & self._tags.overflowed:
                self._read_again()
            else:
                self._postings.learn(new)

    def _read_new(self, traces: NewTraces, seen: dict[Shape, int]) -> None:
        """Index traces read for the first time, from one scan of their spans: the columns of all of them
        at once, then each trace by its quick signature (see :mod:`._scanned_traces`)."""
        scan, entries, columns = traces.scan, self._entries, self._columns
        names = scan.names()
        keys = columns.keys.numbers(traces.services, traces.service_of_span, names, scan.kind, scan.status)
        trace_entries = [entries[trace_id] for trace_id in traces.trace_ids]
        columns.add_rows(
            [entry.slot for entry in trace_entries],
            traces.bounds,
            traces.sizes,
            keys,
            scan.start,
            scan.end,
            scan.span_id,
        )
        self._shapes.learn_keys(columns)
        quick_shape, wanted, overflowed = self._shapes.quick_shape, self._wanted, self._tags.overflowed
        bounds = traces.bounds
        for at, (trace_id, entry, signature) in enumerate(
            zip(traces.trace_ids, trace_entries, quick_signatures(traces, keys.tolist(), names), strict=True)
        ):
            shape = quick_shape(signature, wanted, overflowed, self._postings.canonical)
            self._place(trace_id, entry, shape, seen)
            entry.records = bounds[at + 1] - bounds[at]

    def _take_pending(self, traces: int | None = None) -> int:
        """Apply what the store reported since the last call (the first batches that wrote ``traces``
        traces, if given): drop evicted traces, mark written ones unread. Returns the number of traces
        the batches taken wrote."""
        with self._pending_lock:
            pending = self._pending
            taken = len(pending)
            if traces is not None:
                taken = count = 0
                while taken < len(pending) and count < traces:
                    count += len(pending[taken][0])
                    taken += 1
            pending, self._pending = pending[:taken], pending[taken:]
            self._narrowing.taken(taken)
            self._taken = self._unread_tags.queued - len(self._pending)
        unread, entries, columns, written_now = self._unread, self._entries, self._columns, set()
        for written, evicted, _ in pending:
            for trace_id in evicted:
                self._drop(trace_id)  # and forgets it unread
                written_now.discard(trace_id)
            # Each trace once per call, numbered in order; new traces' slots made at once (a burst
            # brings tens of thousands: this loop is what a query right after it waits for).
            fresh = [trace_id for trace_id in written if trace_id not in written_now]
            if not fresh:
                continue
            written_now.update(fresh)
            self._recent = None
            numbers = range(self._seq + 1, self._seq + 1 + len(fresh))
            self._seq += len(fresh)
            new = [
                (trace_id, seq)
                for trace_id, seq in zip(fresh, numbers, strict=True)
                if trace_id not in entries
            ]
            slot = columns.new_slots([trace_id for trace_id, _ in new], [seq for _, seq in new])
            for trace_id, seq in zip(fresh, numbers, strict=True):
                entry = entries.get(trace_id)
                if entry is None:
                    entries[trace_id] = TraceEntry(seq, slot)
                    slot += 1
                else:
                    entry.seq = seq
                    columns.set_seq(entry.slot, seq)
                    entries.move_to_end(trace_id)
                    unread.pop(trace_id, None)  # to the end: unread traces stay in sequence order
                unread[trace_id] = None
        return len(written_now)

    def _compact_if_due(self) -> None:
        if self._columns.needs_compaction():
            renumbered = self._columns.compact()
            for entry in self._entries.values():
                entry.slot = renumbered[entry.slot]
            self._recent = None

    def _read_again(self) -> None:
        """Forget what was read and read every trace again at the next step (costly: rare)."""
        self._postings.clear()
        self._columns.clear()
        self._shapes.clear()
        self._tags.overflowed.clear()
        self._recent = None
        for trace_id, entry in self._entries.items():
            slot = self._columns.new_slot(trace_id, entry.seq)
            self._entries[trace_id] = TraceEntry(entry.seq, slot)
        self._unread = dict.fromkeys(self._entries)
        with self._pending_lock:  # traces read before are unread again: the catalogue no longer tells
            self._unread_tags.note(None)

    def columns(self) -> ColumnsView | None:
        """A copy of the span columns of every indexed trace (``None`` if they cannot answer: see
        :attr:`SpanColumns.irregular`). Call :meth:`refresh` first."""
        with self._lock:
            return None if self._columns.irregular else self._columns.view()

    def columns_now(self, tick: Callable[[], None] = lambda: None) -> ColumnsView | None:
        """The span columns of every stored trace, as :meth:`refresh` then :meth:`columns` give them, but
        without reading what the store reported since the last refresh when the receiver worked out the
        rows of those spans (:mod:`._pending_rows`): they are laid after the columns. Otherwise (a
        request without rows, an eviction not applied yet, a query that timed out reading) it refreshes
        first. Calls ``tick`` as :meth:`refresh` does."""
        tick()
        with self._lock:
            with self._pending_lock:
                pending = list(self._pending)
            if not self._unread and all(rows is not None and not evicted for _, evicted, rows in pending):
                if self._columns.irregular:
                    return None
                base = self._columns.view()
                if not pending:
                    return base
                cached = self._with_pending  # nothing read or written since: the same answer
                if cached is not None and cached[0] is base and cached[1] == pending:
                    return cached[2]
                added = [rows for _, _, rows in pending if rows is not None]
                # Each write's trace numbered in order of first write, in one pass over the writes.
                first_write: dict[bytes, int] = {}
                number = first_write.setdefault
                position = [number(t, len(first_write)) for rows in added for t in rows.trace_ids]
                distinct, entries = list(first_write), self._entries
                held = [entry.slot if (entry := entries.get(t)) is not None else -1 for t in distinct]
                first_seq, keys = self._seq + 1, self._columns.keys.snapshot()
            else:
                added = None
        if added is None:
            self.refresh((), tick)
            return self.columns()
        tick()
        view = columns_with_pending(base, added, PendingTraces(position, distinct, held), first_seq, keys)
        self._with_pending = (base, pending, view)
        return view

    def _touch(self, trace_id: bytes) -> None:
        self._seq += 1
        self._recent = None
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
        self._recent = None
        if entry is None:
            return
        self._columns.drop(entry.slot)
        self._postings.release(trace_id, entry.postings)

    def _read(self, trace_ids: list[bytes]) -> None:
        """Index the spans of ``trace_ids`` not read yet. This runs for every span ingested: the spans of
        all these traces are parsed and added to the columns at once, then each trace's distinct span keys,
        attributes and origins are indexed once."""
        store = self._store()
        batch: list[tuple[bytes, TraceEntry, int, list[SpanRecord]]] = []
        first_reads: list[tuple[bytes, TraceEntry, list[SpanOrigin | bytes]]] = []
        entries = self._entries
        for trace_id, stored in zip(
            trace_ids,
            store.stored_spans(trace_ids) if store is not None else [[]] * len(trace_ids),
            strict=True,
        ):
            entry = entries.get(trace_id)
            if entry is None:
                continue
            if not stored:
                self._drop(trace_id)
            elif not entry.records:
                first_reads.append((trace_id, entry, stored))
            else:
                records = unique_records(list(zip(stored[0::2], stored[1::2], strict=True)))  # type: ignore[arg-type]
                if len(records) > entry.records:
                    batch.append((trace_id, entry, len(records), records[entry.records :]))
        seen: dict[Shape, int] = {}
        scanned = scan_new_traces(first_reads, SpanColumns.service_of) if first_reads else None
        if scanned is not None:
            self._read_new(scanned, seen)
        else:
            for trace_id, entry, stored in first_reads:
                records = unique_records(list(zip(stored[0::2], stored[1::2], strict=True)))  # type: ignore[arg-type]
                batch.append((trace_id, entry, len(records), records))
        if not batch:
            self._age(seen)
            return
        flat = [record for *_, new in batch for record in new]
        spans = [LeanSpan.FromString(data) for _, data in flat]
        services = {origin: SpanColumns.service_of(origin.resource_attributes) for origin, _ in flat}
        keys = self._columns.add(
            [(entry.slot, len(new), sum(map(len, [data for _, data in new]))) for _, entry, _, new in batch],
            [services[origin] for origin, _ in flat],
            spans,
        )
        self._shapes.learn_keys(self._columns)
        end = 0
        for trace_id, entry, count, new in batch:
            begin, end = end, end + len(new)
            self._index_trace(trace_id, entry, new, spans[begin:end], keys[begin:end], seen)
            entry.records = count
        self._age(seen)

    def _index_trace(
        self,
        trace_id: bytes,
        entry: TraceEntry,
        new: list[SpanRecord],
        spans: list[Any],
        keys: list[int],
        seen: dict[Shape, int],
    ) -> None:
        """Index a trace's new spans. A first read looks its shape up (traces of one endpoint are alike),
        so its postings tuple is shared and its facts are aged once per batch (``seen``: shape -> the
        last sequence number that had it)."""
        # More spans of a trace read before: with what it held (its facts aged again).
        shape = self._shapes.shape(
            signature_of(new, spans, keys),
            self._postings.shape_held(entry.postings) if entry.postings else None,
            self._wanted,
            self._tags.overflowed,
            self._postings.canonical,
        )
        self._place(trace_id, entry, shape, seen)

    def _place(self, trace_id: bytes, entry: TraceEntry, shape: Shape, seen: dict[Shape, int]) -> None:
        """Put a trace under the postings of its ``shape`` (and record the shape as seen)."""
        seen[shape] = entry.seq
        if entry.postings:
            self._postings.release(trace_id, entry.postings)
        entry.postings = shape.postings
        self._postings.hold(trace_id, shape)

    def _age(self, seen: dict[Shape, int]) -> None:
        """Record that the facts of each shape in ``seen`` were last seen at its sequence number."""
        ordered = sorted(seen.items(), key=lambda item: item[1])  # the catalog wants them in order
        if self._tags.age((shape.facts, seq) for shape, seq in ordered):
            self._shapes.forget()  # they hold postings of attributes that overflowed since

    # ---- answering
    def candidates(
        self, requirement: Requirement, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[bytes]:
        """Trace ids that may satisfy ``requirement`` and overlap ``[start_ns, end_ns]``, most recently
        written first. Call :meth:`refresh` first."""
        with self._lock:
            return self._candidates(requirement, start_ns, end_ns)

    def split_candidates(
        self,
        requirement: Requirement,
        start_ns: int | None = None,
        end_ns: int | None = None,
        *,
        searchable: bool = True,
    ) -> tuple[Iterable[bytes], list[bytes]] | None:
        """Without reading anything: the traces not read yet (or with spans not read yet, or written since
        the last :meth:`refresh`) that may satisfy ``requirement``, listed lazily, and the read traces that
        may (as :meth:`candidates`, less the unread ones), each most recently written first. Every unread
        trace was written after every read one (reads take the oldest first), so the first list, then the
        second, is :meth:`candidates`' order after catching up. A trace evicted since the last refresh may
        be listed (the store then has no spans for it). Call :meth:`learn` first.

        The unread ones are all of them, unless the catalogue of unread tags proves that no span not read
        yet meets ``requirement`` (:meth:`UnreadCatalog.lacks`): then only those with spans read before;
        or unless the span keys of the rows the receiver worked out tell which may
        (:mod:`._pending_narrowing`): then those, and those with spans read before.
        ``None`` if the caller cannot tell unread traces apart (not ``searchable``) and neither applies."""
        with self._lock:
            with self._pending_lock:
                pending = list(self._pending)
                ruled_out = self._unread_tags.lacks(requirement)
                view = self._narrowing.view()
            batches = [written for written, *_ in pending]
            narrowed = False
            # Traces taken from the reports but not read (a query timed out reading, the index reads all
            # again) have no rows: then the index reads them first, as before.
            if not (ruled_out or self._unread) and all(rows is not None for rows in view.batches):
                narrowed = self._narrowing.narrows(requirement)
            if not (searchable or ruled_out or narrowed):
                return None
            taken = list(reversed(self._unread))
            read = self._candidates(requirement, start_ns, end_ns)
            if taken and read:
                read = [trace_id for trace_id in read if trace_id not in self._unread]
            entries = self._entries
            # Traces of the reports not taken yet that the index knows (written again): rare, and found
            # by lookups in C, not by a set of every trace reported (~70k after a burst).
            again: set[bytes] = set()
            if entries and (read or ruled_out or narrowed):
                again = again.union(*(entries.keys() & batch for batch in batches))
            # Their spans read before are in neither the catalogue nor the rows: they are searched whole.
            read_before = {t for t in chain(taken, again) if (entry := entries.get(t)) and entry.records}
            if narrowed:
                listed = self._narrowing.traces(requirement, view, self._columns.keys, also=read_before)
        if again and read:
            read = [trace_id for trace_id in read if trace_id not in again]
        unread: Iterable[bytes]
        if narrowed:
            unread = listed if listed is not None else ()
        elif ruled_out:
            unread = (t for t in _newest_first(batches, taken) if t in read_before) if read_before else ()
        else:
            unread = _newest_first(batches, taken)
        return unread, read

    def _candidates(self, requirement: Requirement, start_ns: int | None, end_ns: int | None) -> list[bytes]:
        found = self._postings.traces(requirement)
        if found is None:
            return self._all_candidates(requirement, start_ns, end_ns)
        entries = self._entries
        if len(found) * 16 > len(entries):  # many: the recency order filtered costs less than a sort
            ordered = [t for t in self._recent_order() if t in found]
        else:
            ordered = sorted((t for t in found if t in entries), key=lambda t: entries[t].seq, reverse=True)
        if start_ns is None and end_ns is None and not has_floor(requirement):
            return ordered
        low = start_ns if start_ns is not None else 0
        high = end_ns if end_ns is not None else 2**63
        entries, extent = self._entries, self._columns.extent
        return [
            t
            for t in ordered
            if (entry := entries.get(t)) is not None
            and (span := extent(entry.slot))[1] >= low
            and span[0] <= high
            and _long_enough(requirement, span[2])
        ]

    def _all_candidates(
        self, requirement: Requirement, start_ns: int | None, end_ns: int | None
    ) -> list[bytes]:
        """Every trace overlapping the window (with a span long enough), newest first: a scan of the
        columns' trace extents (a search the postings cannot narrow, such as Grafana's ``{ }``)."""
        ordered = self._recent_order()
        if start_ns is None and end_ns is None and not has_floor(requirement):
            return list(ordered)
        slots = self._recent[1] if self._recent is not None else None
        if slots is None:
            slots = np.array([self._entries[t].slot for t in ordered], dtype=np.int64)
            self._recent = (ordered, slots)
        extent = self._columns.view().slot_extent[slots]
        low = min(max(start_ns or 0, 0), _UINT64_MAX)
        high = min(max(end_ns if end_ns is not None else _UINT64_MAX, 0), _UINT64_MAX)
        kept = np.flatnonzero((extent[:, 1] >= np.uint64(low)) & (extent[:, 0] <= np.uint64(high)))
        return [
            ordered[position]
            for position in kept.tolist()
            if _long_enough(requirement, int(extent[position, 2]))
        ]

    def _recent_order(self) -> list[bytes]:
        """Every trace id, most recently written first (kept until a trace is written or dropped)."""
        if self._recent is None:
            self._recent = (list(reversed(self._entries)), None)
        return self._recent[0]

    def catalogue_complete(self) -> bool:
        """Whether :meth:`tag_names` and :meth:`tag_values` know every stored trace without a
        :meth:`refresh` (see :mod:`._unread_catalog`)."""
        with self._pending_lock:
            return self._unread_tags.complete

    def tag_names(self) -> dict[str, list[str]]:
        """Attribute names per scope of the stored traces (see :meth:`TagCatalog.names`): of the traces
        read, and of those not read yet if :meth:`catalogue_complete`. Reads nothing."""
        with self._lock:
            names = self._tags.names(self._oldest_seq())
            with self._pending_lock:
                unread = self._unread_tags.names()
        for scope, keys in unread.items():
            names[scope] = sorted({*names.get(scope, ()), *keys})
        return names

    def tag_values(self, scopes: Iterable[str], key: str) -> list[tuple[str, str]]:
        """Distinct ``(type, value)`` pairs of attribute ``key`` in ``scopes`` of the stored traces, as
        :meth:`tag_names` (at most :data:`MAX_VALUES_PER_TAG` per scope). Reads nothing."""
        scopes = tuple(scopes)
        with self._lock:
            values = self._tags.values(scopes, key, self._oldest_seq())
            with self._pending_lock:
                unread = self._unread_tags.values(scopes, key)
        if not unread:
            return values
        return sorted({*values, *unread})[: MAX_VALUES_PER_TAG * len(scopes)]

    def intrinsic_values(self, name: str) -> list[str]:
        """Values of ``name``, ``kind``, ``status``, ``rootName`` or ``rootService`` in stored traces."""
        with self._lock:
            return self._postings.values(name)

    def _oldest_seq(self) -> int:
        return next(iter(self._entries.values())).seq if self._entries else self._seq + 1


def _newest_first(batches: list[list[bytes]], taken: list[bytes]) -> Iterator[bytes]:
    """Each trace once, at its last write: those of ``batches`` (the store's reports not taken yet, oldest
    first), newest first, then those of ``taken`` (unread, newest first). Lazy: a search with a limit
    right after a burst lists a few thousand of ~70k."""
    seen: set[bytes] = set()
    for written in reversed(batches):
        fresh = [trace_id for trace_id in reversed(written) if trace_id not in seen]
        seen.update(fresh)
        yield from fresh
    yield from (trace_id for trace_id in taken if trace_id not in seen) if seen else taken


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
