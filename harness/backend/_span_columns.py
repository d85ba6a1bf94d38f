"""Per-span columns of the indexed traces, so that TraceQL metrics count spans without decoding traces.

Each indexed span is one row: its start time, duration (``max(0, end - start)``, as the model's),
span id (as a big-endian integer: the order of its hex), the slot of its trace, and the number of its
*key*: its service value, name, kind and status, interned (few distinct ones). Per trace slot they keep
the trace's id, its index sequence number (the order the general evaluator visits traces in), and its
span count and bytes (what a query reports as inspected).

Rows are appended as the index reads spans (``array`` appends, cheap); :meth:`SpanColumns.view` copies
them into numpy arrays for queries, which share that copy until the columns change. Dropping a trace
marks its slot dead; once dead rows outnumber live ones, :meth:`SpanColumns.compact` rewrites the columns
and renumbers the slots. Not thread safe: the trace index calls it under its lock.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hoptrace.harness._model import AttributeValue
from hoptrace.harness.backend._span_keys import SpanKey, SpanKeys, lookup_of, service_of

__all__ = ["ColumnsView", "SpanColumns", "SpanKey"]
_UINT64_MAX = 2**64 - 1
_EMPTY_EXTENT = array("Q", (_UINT64_MAX, 0, 0))
"""A new slot's extent."""
_COMPACT_AFTER = 65_536
"""Dead rows are only compacted away once there are at least this many (and more than live rows)."""


@dataclass(frozen=True, slots=True)
class ColumnsView:
    """A copy of the columns (numpy arrays, one entry per row or per slot), safe to use without a lock."""

    start: npt.NDArray[np.uint64]
    duration: npt.NDArray[np.uint64]
    span_id: npt.NDArray[np.uint64]
    slot: npt.NDArray[np.uint32]
    key: npt.NDArray[np.uint32]
    keys: list[SpanKey]
    slot_seq: npt.NDArray[np.int64]
    """Per slot: the trace's sequence number in the index, -1 once the trace is dropped."""
    slot_spans: npt.NDArray[np.uint32]
    slot_bytes: npt.NDArray[np.uint64]
    slot_trace: list[bytes]
    live: npt.NDArray[np.bool_]
    """Per row: whether its trace is still indexed."""
    slot_extent: npt.NDArray[np.uint64]
    """Per slot: earliest start, latest end, longest duration (see :meth:`SpanColumns.extent`)."""


class SpanColumns:
    """See the module docstring."""

    def __init__(self, keys: SpanKeys | None = None) -> None:
        self.keys = keys or SpanKeys()
        """Numbers the rows' keys (shared with whoever else works keys out: kept by :meth:`clear`)."""
        self.clear()

    def clear(self) -> None:
        self._start = array("Q")
        self._duration = array("Q")
        self._span_id = array("Q")
        self._slot = array("I")
        self._key = array("I")
        self._slot_seq = array("q")
        self._slot_spans = array("I")
        self._slot_bytes = array("Q")
        self._slot_extent = array("Q")
        """Per slot, three numbers: the trace's earliest start, latest end, longest duration."""
        self._slot_trace: list[bytes] = []
        self._dead_rows = 0
        self._view: ColumnsView | None = None
        """The last view, while nothing changed since (queries after ingest share it)."""
        self.irregular = False
        """Set once a span id of other than 8 bytes was read (no receiver stores one): queries then
        decline the columns, whose span id column cannot hold it."""

    def new_slot(self, trace_id: bytes, seq: int) -> int:
        return self.new_slots([trace_id], [seq])

    def new_slots(self, trace_ids: list[bytes], seqs: list[int]) -> int:
        """Empty slots for ``trace_ids`` with sequence numbers ``seqs``; returns the first's number (the
        others follow it)."""
        self._view = None
        first, count = len(self._slot_trace), len(trace_ids)
        self._slot_seq.extend(seqs)
        self._slot_spans.frombytes(bytes(self._slot_spans.itemsize * count))
        self._slot_bytes.frombytes(bytes(self._slot_bytes.itemsize * count))
        self._slot_extent.extend(_EMPTY_EXTENT * count)
        self._slot_trace.extend(trace_ids)
        return first

    def set_seq(self, slot: int, seq: int) -> None:
        self._view = None
        self._slot_seq[slot] = seq

    def drop(self, slot: int) -> None:
        self._view = None
        self._slot_seq[slot] = -1
        self._dead_rows += self._slot_spans[slot]

    @property
    def rows(self) -> int:
        return len(self._slot)

    @property
    def key_count(self) -> int:
        return len(self.keys)

    def key(self, number: int) -> SpanKey:
        return self.keys[number]

    def add(self, traces: list[tuple[int, int, int]], services: list[Any], spans: list[Any]) -> list[int]:
        """Rows for ``spans`` (parsed OTLP spans, such as ``LeanSpan``), the first ``count`` of them of
        trace ``slot`` (``size`` bytes), for each ``(slot, count, size)`` of ``traces`` in turn;
        ``services[i]`` is the resource's ``service.name`` of ``spans[i]`` (see :meth:`service_of`).
        Returns the number of each row's :class:`SpanKey`."""
        self._view = None
        # Whole lists at a time, each built by one comprehension: this runs for every span ingested.
        starts = [span.start_time_unix_nano for span in spans]
        ends = [span.end_time_unix_nano for span in spans]
        names = [span.name for span in spans]
        kinds = [span.kind for span in spans]
        statuses = [span.status.code for span in spans]
        ids = [span.span_id for span in spans]
        span_keys = self.keys
        lookups = [
            lookup_of(service, name, kind, status)
            for service, name, kind, status in zip(services, names, kinds, statuses, strict=True)
        ]
        keys = [span_keys.get(lookup) for lookup in lookups]
        if None in keys:
            pairs = zip(keys, lookups, services, strict=True)
            keys = [
                span_keys.number(lookup, service) if key is None else key for key, lookup, service in pairs
            ]
        durations = [end - start if end > start else 0 for start, end in zip(starts, ends, strict=True)]
        self._start.extend(starts)
        self._duration.extend(durations)
        if any(len(one) != 8 for one in ids):
            self.irregular = True
            ids = [one[:8] for one in ids]
        self._span_id.extend([int.from_bytes(one, "big") for one in ids])
        self._key.extend(keys)  # type: ignore[arg-type]
        extent, end = self._slot_extent, 0
        for slot, count, size in traces:
            self._slot.extend([slot] * count)
            self._slot_spans[slot] += count
            self._slot_bytes[slot] += size
            begin, end = end, end + count
            trace_starts, trace_durations = starts[begin:end], durations[begin:end]
            at = slot * 3
            extent[at] = min(extent[at], min(trace_starts))
            extent[at + 1] = max(extent[at + 1], max(map(int.__add__, trace_starts, trace_durations)))
            extent[at + 2] = max(extent[at + 2], max(trace_durations))
        return keys  # type: ignore[return-value]

    def add_rows(
        self,
        slots: list[int],
        bounds: list[int],
        sizes: list[int],
        keys: npt.NDArray[np.int64],
        start: npt.NDArray[np.uint64],
        end: npt.NDArray[np.uint64],
        span_id: npt.NDArray[np.uint64],
    ) -> None:
        """Rows for the spans of new traces (slots with no rows yet): trace ``slots[t]`` has rows
        ``bounds[t]`` to ``bounds[t + 1]`` of ``keys`` (from :meth:`SpanKeys.numbers`), ``start``, ``end`` and
        ``span_id`` (8-byte ids), and ``sizes[t]`` bytes. As :meth:`add`, a whole batch at once."""
        self._view = None
        duration = np.where(end > start, end - start, np.uint64(0)).astype(np.uint64)
        starts = np.asarray(bounds[:-1], dtype=np.int64)
        edges = np.asarray(bounds, dtype=np.int64)
        counts = edges[1:] - edges[:-1]
        self._start.frombytes(start.astype(np.uint64).tobytes())
        self._duration.frombytes(duration.tobytes())
        self._span_id.frombytes(span_id.astype(np.uint64).tobytes())
        self._key.frombytes(keys.astype(np.uint32).tobytes())
        self._slot.frombytes(np.repeat(np.asarray(slots, dtype=np.uint32), counts).tobytes())
        earliest = np.minimum.reduceat(start, starts).tolist()
        latest = np.maximum.reduceat(start + duration, starts).tolist()
        longest = np.maximum.reduceat(duration, starts).tolist()
        extent, spans, byte_counts = self._slot_extent, self._slot_spans, self._slot_bytes
        for slot, count, size, low, high, long in zip(
            slots, counts.tolist(), sizes, earliest, latest, longest, strict=True
        ):
            spans[slot] = count
            byte_counts[slot] = size
            at = slot * 3
            extent[at], extent[at + 1], extent[at + 2] = low, high, long

    def extent(self, slot: int) -> tuple[int, int, int]:
        """The trace's earliest span start, latest ``start + duration`` (not before any span's end, as a
        span ending before it starts has no duration), and longest duration."""
        at = slot * 3
        return self._slot_extent[at], self._slot_extent[at + 1], self._slot_extent[at + 2]

    @staticmethod
    def service_of(resource: dict[str, AttributeValue]) -> Any:
        return service_of(resource)

    def needs_compaction(self) -> bool:
        return self._dead_rows >= _COMPACT_AFTER and self._dead_rows * 2 > len(self._slot)

    def compact(self) -> dict[int, int]:
        """Drop the rows of dead slots and renumber the live slots; returns ``{old slot: new slot}``."""
        seq = np.frombuffer(self._slot_seq, dtype=np.int64)
        live_slots = np.flatnonzero(seq >= 0)
        renumber = np.full(len(seq), -1, dtype=np.int64)
        renumber[live_slots] = np.arange(len(live_slots))
        slot = np.frombuffer(self._slot, dtype=np.uint32)
        keep = seq[slot] >= 0
        wide = (self._start, self._duration, self._span_id)
        columns = [np.frombuffer(column, dtype=np.uint64)[keep] for column in wide]
        new_slot = renumber[slot[keep]].astype(np.uint32)
        new_key = np.frombuffer(self._key, dtype=np.uint32)[keep]
        slot_seq = seq[live_slots]
        slot_spans = np.frombuffer(self._slot_spans, dtype=np.uint32)[live_slots]
        slot_bytes = np.frombuffer(self._slot_bytes, dtype=np.uint64)[live_slots]
        slot_extent = np.frombuffer(self._slot_extent, dtype=np.uint64).reshape(-1, 3)[live_slots]
        slot_trace = [self._slot_trace[i] for i in live_slots.tolist()]
        del seq, slot  # release the buffers before the arrays are replaced
        self._start, self._duration, self._span_id = (array("Q", c.tobytes()) for c in columns)
        self._slot = array("I", new_slot.tobytes())
        self._key = array("I", new_key.tobytes())
        self._slot_seq = array("q", slot_seq.tobytes())
        self._slot_spans = array("I", slot_spans.tobytes())
        self._slot_bytes = array("Q", slot_bytes.tobytes())
        self._slot_extent = array("Q", slot_extent.tobytes())
        self._slot_trace = slot_trace
        self._dead_rows = 0
        self._view = None
        return {old: new for new, old in enumerate(live_slots.tolist())}

    def view(self) -> ColumnsView:
        if self._view is None:
            slot, slot_seq = _copy(self._slot, np.uint32), _copy(self._slot_seq, np.int64)
            self._view = ColumnsView(
                start=_copy(self._start, np.uint64),
                duration=_copy(self._duration, np.uint64),
                span_id=_copy(self._span_id, np.uint64),
                slot=slot,
                key=_copy(self._key, np.uint32),
                keys=self.keys.snapshot(),
                slot_seq=slot_seq,
                slot_spans=_copy(self._slot_spans, np.uint32),
                slot_bytes=_copy(self._slot_bytes, np.uint64),
                slot_trace=list(self._slot_trace),
                live=slot_seq[slot] >= 0,
                slot_extent=_copy(self._slot_extent, np.uint64).reshape(-1, 3),
            )
        return self._view


def _copy(column: array[Any], dtype: type[Any]) -> Any:
    return np.frombuffer(column, dtype=dtype).copy()
