"""Per-span columns of the indexed traces, so that TraceQL metrics count spans without decoding traces.

Each indexed span is one row: its start time, duration (``max(0, end - start)``, as the model's),
span id (as a big-endian integer: the order of its hex), the slot of its trace, and the id of its
*kind*: its service value, name, kind and status, interned (few distinct ones). Per trace slot they keep
the trace's id, its index sequence number (the order the general evaluator visits traces in), and its
span count and bytes (what a query reports as inspected).

Rows are appended as the index reads spans (``array`` appends, cheap); :meth:`SpanColumns.view` copies
them into numpy arrays for a query. Dropping a trace marks its slot dead; once dead rows outnumber live
ones, :meth:`SpanColumns.compact` rewrites the columns and renumbers the slots. Not thread safe: the
trace index calls it under its lock.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hoptrace.harness._model import AttributeValue, SpanKind, StatusCode
from hoptrace.harness.backend._decode import MAX_VALUE_CHARS

_KINDS = tuple(SpanKind)
_STATUSES = tuple(StatusCode)
_MISSING_SERVICE = object()
_COMPACT_AFTER = 65_536
"""Dead rows are only compacted away once there are at least this many (and more than live rows)."""


@dataclass(frozen=True, slots=True)
class SpanKey:
    """What the ``kind`` column interns: the fields TraceQL metrics filter and group on most."""

    service: AttributeValue
    """The resource's ``service.name`` (``""`` when ``has_service`` is false)."""
    has_service: bool
    name: str
    kind: SpanKind
    status: StatusCode


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


class SpanColumns:
    """See the module docstring."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._start = array("Q")
        self._duration = array("Q")
        self._span_id = array("Q")
        self._slot = array("I")
        self._key = array("I")
        self._keys: list[SpanKey] = []
        self._key_ids: dict[tuple[Any, ...], int] = {}
        self._slot_seq = array("q")
        self._slot_spans = array("I")
        self._slot_bytes = array("Q")
        self._slot_trace: list[bytes] = []
        self._dead_rows = 0
        self.irregular = False
        """Set once a span id of other than 8 bytes was read (no receiver stores one): queries then
        decline the columns, whose span id column cannot hold it."""

    def new_slot(self, trace_id: bytes, seq: int) -> int:
        self._slot_seq.append(seq)
        self._slot_spans.append(0)
        self._slot_bytes.append(0)
        self._slot_trace.append(trace_id)
        return len(self._slot_trace) - 1

    def set_seq(self, slot: int, seq: int) -> None:
        self._slot_seq[slot] = seq

    def drop(self, slot: int) -> None:
        self._slot_seq[slot] = -1
        self._dead_rows += self._slot_spans[slot]

    def add(self, slot: int, service: Any, span: Any, size: int) -> None:
        """One row for ``span`` (an ``opentelemetry.proto`` Span of ``size`` bytes) of trace ``slot``;
        ``service`` is its resource's ``service.name`` (``_MISSING_SERVICE`` via :meth:`service_of`)."""
        start = span.start_time_unix_nano
        name = span.name
        if len(name) > MAX_VALUE_CHARS:  # as decoding cuts it
            name = name[:MAX_VALUE_CHARS]
        kind = span.kind
        status = span.status.code
        lookup = (service if type(service) is str else _hashable(service), name, kind, status)
        key = self._key_ids.get(lookup)
        if key is None:
            key = self._key_ids[lookup] = len(self._keys)
            self._keys.append(
                SpanKey(
                    "" if service is _MISSING_SERVICE else service,
                    service is not _MISSING_SERVICE,
                    name,
                    _KINDS[kind] if 0 <= kind < len(_KINDS) else SpanKind.UNSPECIFIED,
                    _STATUSES[status] if 0 <= status < len(_STATUSES) else StatusCode.UNSET,
                )
            )
        self._start.append(start)
        self._duration.append(max(0, span.end_time_unix_nano - start))
        span_id = span.span_id
        if len(span_id) != 8:
            self.irregular = True
        self._span_id.append(int.from_bytes(span_id[:8], "big"))
        self._slot.append(slot)
        self._key.append(key)
        self._slot_spans[slot] += 1
        self._slot_bytes[slot] += size

    @staticmethod
    def service_of(resource: dict[str, AttributeValue]) -> Any:
        return resource.get("service.name", _MISSING_SERVICE)

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
        slot_trace = [self._slot_trace[i] for i in live_slots.tolist()]
        del seq, slot  # release the buffers before the arrays are replaced
        self._start, self._duration, self._span_id = (array("Q", c.tobytes()) for c in columns)
        self._slot = array("I", new_slot.tobytes())
        self._key = array("I", new_key.tobytes())
        self._slot_seq = array("q", slot_seq.tobytes())
        self._slot_spans = array("I", slot_spans.tobytes())
        self._slot_bytes = array("Q", slot_bytes.tobytes())
        self._slot_trace = slot_trace
        self._dead_rows = 0
        return {old: new for new, old in enumerate(live_slots.tolist())}

    def view(self) -> ColumnsView:
        return ColumnsView(
            start=_copy(self._start, np.uint64),
            duration=_copy(self._duration, np.uint64),
            span_id=_copy(self._span_id, np.uint64),
            slot=_copy(self._slot, np.uint32),
            key=_copy(self._key, np.uint32),
            keys=list(self._keys),
            slot_seq=_copy(self._slot_seq, np.int64),
            slot_spans=_copy(self._slot_spans, np.uint32),
            slot_bytes=_copy(self._slot_bytes, np.uint64),
            slot_trace=list(self._slot_trace),
        )


def _copy(column: array[Any], dtype: type[Any]) -> Any:
    return np.frombuffer(column, dtype=dtype).copy()


def _hashable(value: Any) -> Any:
    """A dict key that keeps ``1``, ``1.0``, ``True`` and ``"1"`` apart (and every NaN together)."""
    return (type(value).__name__, repr(value))
