"""Span columns of stored requests the trace index has not read yet, worked out at ingest, so that TraceQL
metrics right after a burst of ingest count every span without waiting for the index.

The index reads what was stored in the gaps ingest leaves (:mod:`._index_keeper`): after a burst of 500k
spans that is seconds of CPU, and a metrics query would wait for all of it. The receiver already reads
each request's spans as flat lists, one per field and scope (:mod:`._lean_request`), so the rows of its
spans (start, duration, span id, :class:`SpanKey` number, bytes) cost a few numpy conversions per request
(:class:`RequestRows`). The store hands them to the index with the trace ids it wrote; until the index
reads those traces, :func:`columns_with_pending` lays them after the index's own columns.

Rows are only worked out when each of a scope's fields has one value per span (proto3 leaves a zero out:
a span of kind ``SPAN_KIND_UNSPECIFIED``, a start time of 0, an empty name), and each span id of the
request is distinct (a repeated one may be an exporter's retry, which the index reads once). Otherwise
the request has none, and metrics wait for the index as before. A scope whose spans left some statuses
out (many exporters send none when it is unset) has them placed by the spans' tails (or, failing that,
read span by span: ~0.4 us a span).
Thread safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from hoptrace.harness._model import SpanKind, StatusCode
from hoptrace.harness.backend._attribute_facts import AttributeFact
from hoptrace.harness.backend._lean_request import ScopeGroup
from hoptrace.harness.backend._span_columns import ColumnsView
from hoptrace.harness.backend._span_keys import SpanKey, SpanKeys, service_of
from hoptrace.harness.backend._store import SpanOrigin

_UINT64_MAX = 2**64 - 1
_KIND_COUNT = len(SpanKind)
_STATUS_COUNT = len(StatusCode)
_FLAGS_TAG = b"\x85\x01"
"""A span's ``flags`` field's tag (number 16, fixed32): four bytes follow."""
CACHED_STATUSES = 4096
"""Distinct serialized statuses whose code is remembered; past that the cache starts again."""


@dataclass(frozen=True, slots=True)
class IngestFacts:
    """What the receiver worked out of a stored request for the trace index."""

    tags: tuple[AttributeFact, ...]
    """For autocomplete (:mod:`._request_facts`)."""
    rows: PendingRows | None
    """For metrics, if they could be worked out."""


@dataclass(frozen=True, slots=True)
class PendingRows:
    """The rows of one stored request's spans, in the order the request sent them."""

    trace_ids: list[bytes]
    """The request's distinct trace ids, in order of first appearance."""
    trace_tail: npt.NDArray[np.uint64]
    """Per trace of ``trace_ids``: the last 8 bytes of its id (see :mod:`._pending_narrowing`)."""
    trace: npt.NDArray[np.uint32]
    """Per row: its trace's position in ``trace_ids``."""
    start: npt.NDArray[np.uint64]
    duration: npt.NDArray[np.uint64]
    span_id: npt.NDArray[np.uint64]
    key: npt.NDArray[np.uint32]
    trace_bytes: npt.NDArray[np.uint64]
    """Per trace of ``trace_ids``: its spans' serialized size in the request."""


class RequestRows:
    """Works out :class:`PendingRows` of requests (see the module docstring)."""

    def __init__(self, keys: SpanKeys) -> None:
        self._keys = keys
        self._lock = threading.Lock()
        self._status_codes: dict[bytes, int] = {}

    def of(
        self, groups: list[ScopeGroup], origins: list[SpanOrigin], scopes: Callable[[], list[Any]]
    ) -> PendingRows | None:
        """The rows of a request's spans (``groups`` with each one's interned origin), or ``None`` when
        they cannot be told apart (see the module docstring). ``scopes()`` gives the request's parsed
        ``ScopeSpans`` with spans, in the order of ``groups``: a scope whose spans sent some statuses but
        not all, which their tails do not place, has them read from there, span by span."""
        count = sum(len(group.spans) for group in groups)
        fields: list[list[Any]] = [[], [], [], [], []]
        for at, group in enumerate(groups):
            flat = group.merged
            parts = (flat.start_time_unix_nano[:], flat.end_time_unix_nano[:], group.names, group.kinds)
            if any(len(part) != len(group.spans) for part in parts):
                return None
            statuses = group.statuses
            if len(statuses) == len(group.spans):
                codes = self._codes(statuses)
            elif not statuses:
                codes = [0] * len(group.spans)
            else:  # the spans that sent one, found by their tails; failing that, read span by span
                placed = _placed_statuses(group.spans, statuses, flat.flags != 0)
                if placed is None:
                    codes = [span.status.code for span in scopes()[at].spans]
                else:
                    codes = [0] * len(group.spans)
                    for position, code in zip(placed, self._codes(statuses), strict=True):
                        codes[position] = code
            for gathered, part in zip(fields, (*parts, codes), strict=True):
                gathered += part
        starts, ends, names, kinds, codes = fields
        span_ids = list(chain.from_iterable(group.span_ids for group in groups))
        if len(set(span_ids)) != count:
            return None
        trace_ids = list(chain.from_iterable(group.trace_ids for group in groups))
        positions = dict.fromkeys(trace_ids)
        for at, trace_id in enumerate(positions):
            positions[trace_id] = at
        services = [service_of(origin.resource_attributes) for origin in origins]
        service_of_span = np.repeat(
            np.arange(len(groups), dtype=np.int64), [len(group.spans) for group in groups]
        )
        kind = np.array(kinds, dtype=np.int64)
        kind[(kind < 0) | (kind >= _KIND_COUNT)] = 0  # out of range: unspecified, as the model reads it
        status = np.array(codes, dtype=np.int64)
        status[(status < 0) | (status >= _STATUS_COUNT)] = 0  # out of range: unset, as the model reads it
        start, end = np.array(starts, dtype=np.uint64), np.array(ends, dtype=np.uint64)
        trace = np.array(list(map(positions.__getitem__, trace_ids)), dtype=np.uint32)
        sizes = np.fromiter(map(len, chain.from_iterable(group.spans for group in groups)), np.float64, count)
        return PendingRows(
            trace_ids=list(positions),
            trace_tail=np.frombuffer(b"".join(positions), dtype="<u8")[1::2],  # ids are 16 bytes
            trace=trace,
            start=start,
            duration=np.where(end > start, end - start, np.uint64(0)).astype(np.uint64),
            span_id=np.frombuffer(b"".join(span_ids), dtype=">u8").astype(np.uint64),
            key=self._keys.numbers(services, service_of_span, names, kind, status).astype(np.uint32),
            trace_bytes=np.bincount(trace, weights=sizes, minlength=len(positions)).astype(np.uint64),
        )

    def _codes(self, statuses: list[bytes]) -> list[int]:
        """Each serialized ``Status``'s code."""
        with self._lock:
            codes = self._status_codes
            for raw in set(statuses).difference(codes):
                if len(codes) >= CACHED_STATUSES:
                    codes.clear()
                codes[raw] = Status.FromString(raw).code
            return list(map(codes.__getitem__, statuses))


def _placed_statuses(spans: list[bytes], statuses: list[bytes], flagged: bool) -> list[int] | None:
    """The position of the span each of ``statuses`` (a scope's, in order) came from, found by the spans'
    tails: an encoder that writes fields in field order (as protobuf's own do) puts a span's status
    (field 15) last but for its flags (field 16, fixed32; ``flagged`` if a span has them). ``None`` unless
    exactly one span ends with each, in order (the caller then reads the spans)."""
    # Written by hand: parsing each span to find its status costs ~0.4 us a span; a tail test ~0.05.
    tails = tuple({_status_field(raw) for raw in statuses})
    if flagged:
        placed = [at for at, span in enumerate(spans) if _ends_with(span, tails, flagged)]
    else:  # every span of an ingested scope is tested: no call per span
        placed = [at for at, span in enumerate(spans) if span.endswith(tails)]
    if len(placed) != len(statuses):
        return None
    for at, raw in zip(placed, statuses, strict=True):
        if not _ends_with(spans[at], _status_field(raw), flagged):
            return None
    return placed


def _ends_with(span: bytes, tails: bytes | tuple[bytes, ...], flagged: bool) -> bool:
    """Whether ``span`` ends with one of ``tails``, or (``flagged``) does so before its flags field."""
    return span.endswith(tails) or (flagged and span[-6:-4] == _FLAGS_TAG and span[:-6].endswith(tails))


def _status_field(raw: bytes) -> bytes:
    """A span's status field (number 15, length-delimited) holding serialized ``Status`` ``raw``."""
    size, length = len(raw), bytearray()
    while size > 0x7F:
        length.append(0x80 | (size & 0x7F))
        size >>= 7
    length.append(size)
    return b"\x7a" + bytes(length) + raw


@dataclass(frozen=True, slots=True)
class PendingTraces:
    """The traces pending requests wrote, as :func:`columns_with_pending` lays them out."""

    position: list[int]
    """Per trace id of each request's ``trace_ids``, in order: its position in ``distinct``."""
    distinct: list[bytes]
    """The traces written, each once, in order of first write."""
    held: list[int]
    """Per trace of ``distinct``: its slot in the index's columns, or -1 if the index does not hold it."""


def columns_with_pending(
    base: ColumnsView,
    pending: Iterable[PendingRows],
    traces: PendingTraces,
    first_seq: int,
    keys: list[SpanKey],
) -> ColumnsView:
    """``base`` (the index's columns) with the rows of ``pending`` (requests in the order they were
    stored) after them, as the index will hold them once it has read those requests: a trace the index
    holds keeps its slot, a new one gets the next free slot, and each trace is numbered in order of its
    first write among them, from ``first_seq`` on (as the index numbers the traces of the requests it
    takes at once). ``traces`` are the traces ``pending`` wrote; ``keys`` must number every row's key."""
    pending = list(pending)
    next_slot = len(base.slot_trace)
    distinct = traces.distinct
    bounds = np.cumsum([0, *(len(rows.trace_ids) for rows in pending)]).tolist()
    slot_of_distinct = np.array(traces.held, dtype=np.int64)
    new = np.flatnonzero(slot_of_distinct < 0)
    slot_of_distinct[new] = np.arange(next_slot, next_slot + len(new))
    if len(distinct) == len(traces.position):  # each trace written once: in the order written
        slot_of_written = slot_of_distinct
    else:
        slot_of_written = slot_of_distinct[np.array(traces.position, dtype=np.int64)]
    new_traces = distinct if len(new) == len(distinct) else [distinct[number] for number in new.tolist()]
    slots_of_traces = [slot_of_written[low:high] for low, high in pairwise(bounds)]
    numbered, numbers = slot_of_distinct, np.arange(first_seq, first_seq + len(distinct))
    slot_count = next_slot + len(new_traces)
    slot_column = np.concatenate(
        [
            base.slot.astype(np.int64),
            *(slots[rows.trace] for slots, rows in zip(slots_of_traces, pending, strict=True)),
        ]
    )
    added = slot_column[len(base.slot) :]
    start = np.concatenate([base.start, *(rows.start for rows in pending)])
    duration = np.concatenate([base.duration, *(rows.duration for rows in pending)])
    added_start, added_duration = start[len(base.start) :], duration[len(base.duration) :]

    slot_seq = np.concatenate([base.slot_seq, np.full(len(new_traces), -1, dtype=np.int64)])
    slot_seq[numbered] = numbers
    slot_spans = np.concatenate([base.slot_spans, np.zeros(len(new_traces), dtype=np.uint32)])
    slot_spans += np.bincount(added, minlength=slot_count).astype(np.uint32)
    trace_bytes = np.concatenate([rows.trace_bytes for rows in pending]).astype(np.float64)  # exact < 2**53
    slot_bytes = np.concatenate([base.slot_bytes, np.zeros(len(new_traces), dtype=np.uint64)])
    slot_bytes += np.bincount(
        np.concatenate(slots_of_traces), weights=trace_bytes, minlength=slot_count
    ).astype(np.uint64)
    extent = np.concatenate(
        [base.slot_extent, np.tile(np.array([_UINT64_MAX, 0, 0], dtype=np.uint64), (len(new_traces), 1))]
    )
    np.minimum.at(extent[:, 0], added, added_start)
    np.maximum.at(extent[:, 1], added, added_start + added_duration)
    np.maximum.at(extent[:, 2], added, added_duration)
    return ColumnsView(
        start=start,
        duration=duration,
        span_id=np.concatenate([base.span_id, *(rows.span_id for rows in pending)]),
        slot=slot_column.astype(np.uint32),
        key=np.concatenate([base.key, *(rows.key for rows in pending)]),
        keys=keys,
        slot_seq=slot_seq,
        slot_spans=slot_spans,
        slot_bytes=slot_bytes,
        slot_trace=[*base.slot_trace, *new_traces],
        live=slot_seq[slot_column] >= 0,
        slot_extent=extent,
    )
