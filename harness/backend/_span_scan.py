"""Reads the fields the trace index needs from many serialized OTLP spans at once, with numpy.

Parsing spans one by one costs about a microsecond and a half each in protobuf's Python objects, and
reading each field of a parsed span a fifth more: the index would cost more than ingest. This scanner
walks the protobuf wire format of a whole batch of spans in lockstep instead: step *k* reads the *k*-th
field of every span still unfinished, with one numpy operation per part of a field (tag, length, value),
so that a step costs about as much for a thousand spans as for one. It reads the ``Span`` fields of
``trace.proto``: trace and span ids, parent span id, name, kind, start and end times, each attribute as
its raw serialized ``KeyValue`` (the bytes ``LeanSpan`` hands over), the status code, and whether the span
has events or links (which the caller reads with ``LeanSpan``: few spans have them).

It returns ``None`` for a batch it cannot read (a group wire type, a field past its span's end, a
repeated non-repeated field, a field that needs more than :data:`MAX_STEPS` steps): the caller then
reads those spans one by one, as before. Pure function; thread safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_STEPS = 64
"""Fields per span read in lockstep; a batch with a span of more fields is read one span at a time."""
_PAD = bytes(16)
"""Zero bytes after the last span, so that a varint read near the end never indexes past the buffer."""
_TRACE_ID, _SPAN_ID, _PARENT, _NAME, _KIND, _START, _END, _ATTRIBUTE = 1, 2, 4, 5, 6, 7, 8, 9
_EVENT, _LINK, _STATUS = 11, 13, 15
_STATUS_CODE = 3
_SINGLE = [_TRACE_ID, _SPAN_ID, _PARENT, _NAME, _KIND, _START, _END, _STATUS]
_GRID = 16
"""Field numbers below this are placed in a grid (one row per number, one column per span)."""
_WIRE = np.array([-1, 2, 2, 2, 2, 2, 0, 1, 1, 2, 0, 2, 0, 2, 0, 2], dtype=np.int64)
"""The wire type of ``Span`` fields 1-15 (trace_state 3, dropped counts 10, 12 and 14 included)."""
_BYTES = np.arange(8, dtype=np.int64)
_SIZE = np.array([1, 8, 1, 0, 0, 4, 0, 0], dtype=np.int64)
"""Bytes a field of each wire type takes after its tag, before its varint or length (0: unreadable)."""


@dataclass(frozen=True, slots=True)
class ScannedSpans:
    """The fields of a batch of spans, one entry per span (in the order given). Positions point into
    :attr:`data`; an absent field has length 0."""

    data: bytes
    """The spans, concatenated."""
    length: npt.NDArray[np.int64]
    """Each span's size in bytes."""
    trace_id_at: npt.NDArray[np.int64]
    trace_id_length: npt.NDArray[np.int64]
    span_id_at: npt.NDArray[np.int64]
    span_id_length: npt.NDArray[np.int64]
    span_id: npt.NDArray[np.uint64]
    """The span id as a big-endian integer (0 unless it is 8 bytes)."""
    parent_at: npt.NDArray[np.int64]
    parent_length: npt.NDArray[np.int64]
    has_parent: npt.NDArray[np.bool_]
    name_at: npt.NDArray[np.int64]
    name_length: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]
    start: npt.NDArray[np.uint64]
    end: npt.NDArray[np.uint64]
    status: npt.NDArray[np.int64]
    attributes_at: npt.NDArray[np.int64]
    attributes_end: npt.NDArray[np.int64]
    """Where the span's attributes begin and end: from the tag of its first to the end of its last (only
    attributes in between in spans that exporters write; read them with ``LeanAttributes``)."""
    has_others: npt.NDArray[np.bool_]
    """Whether the span has events or links."""

    def slices(self, at: npt.NDArray[np.int64], end: npt.NDArray[np.int64]) -> list[bytes]:
        """The bytes of :attr:`data` from each ``at`` to the matching ``end``."""
        data = self.data
        return [data[one:other] for one, other in zip(at.tolist(), end.tolist(), strict=True)]

    def trace_ids(self) -> list[bytes]:
        return self.slices(self.trace_id_at, self.trace_id_at + self.trace_id_length)

    def names(self) -> list[bytes]:
        """Each span's name, UTF-8 encoded."""
        return self.slices(self.name_at, self.name_at + self.name_length)

    def attribute_runs(self) -> list[bytes]:
        """Each span's attributes, as the run of serialized fields :attr:`attributes_at` points to."""
        return self.slices(self.attributes_at, self.attributes_end)


@dataclass(frozen=True, slots=True)
class _Fields:
    """One row per field read: its span, field number, wire type, where its tag and its payload start
    and, for a varint its value, for a length-delimited field its length."""

    span: npt.NDArray[np.int64]
    number: npt.NDArray[np.int64]
    wire: npt.NDArray[np.int64]
    tag_at: npt.NDArray[np.int64]
    at: npt.NDArray[np.int64]
    value: npt.NDArray[np.int64]


def scan_spans(spans: Sequence[bytes]) -> ScannedSpans | None:
    """The fields of serialized ``opentelemetry.proto.trace.v1.Span`` messages ``spans``, or ``None``
    (see the module docstring). The spans must have parsed as protobuf (the receiver checks)."""
    count = len(spans)
    lengths = np.fromiter(map(len, spans), dtype=np.int64, count=count)
    ends = np.cumsum(lengths)
    joined = b"".join(spans)
    data = np.frombuffer(joined + _PAD, dtype=np.uint8)
    fields = _fields(data, ends - lengths, ends)
    if fields is None:
        return None
    number, wire, span = fields.number, fields.wire, fields.span
    known = (number > 0) & (number < _GRID)
    if (wire[known] != _WIRE[number[known]]).any():
        return None
    cell = number[known] * count + span[known]
    if np.bincount(cell, minlength=_GRID * count).reshape(_GRID, count)[_SINGLE].max(initial=0) > 1:
        return None  # a singular field given twice would have to be merged: read one by one
    rows = np.full((_GRID, count + 1), -1, dtype=np.int64)  # column ``count``: absent fields point there
    rows[number[known], span[known]] = np.flatnonzero(known)
    at = np.append(fields.at, 0)
    value = np.append(fields.value, 0)
    present = rows[:, :count] >= 0
    row = rows[:, :count]
    status = _status_codes(data, at[row[_STATUS]], np.where(present[_STATUS], value[row[_STATUS]], 0))
    kind = _int32(value[row[_KIND]])
    if status is None or (kind < 0).any() or (kind > 5).any() or (status < 0).any() or (status > 2).any():
        return None  # enum values that no SDK sends: read one by one
    span_length = np.where(present[_SPAN_ID], value[row[_SPAN_ID]], 0)
    regular = span_length == 8
    span_id = _fixed64(data, np.where(regular, at[row[_SPAN_ID]], 0), big_endian=True)
    span_id[~regular] = 0
    parent_length = np.where(present[_PARENT], value[row[_PARENT]], 0)
    attribute = np.flatnonzero(number == _ATTRIBUTE)
    attributes_at = np.zeros(count, dtype=np.int64)
    attributes_end = np.zeros(count, dtype=np.int64)
    if len(attribute):
        owner = span[attribute]
        attributes_at[owner] = np.iinfo(np.int64).max
        np.minimum.at(attributes_at, owner, fields.tag_at[attribute])
        np.maximum.at(attributes_end, owner, fields.at[attribute] + fields.value[attribute])
    return ScannedSpans(
        data=joined,
        length=lengths,
        trace_id_at=at[row[_TRACE_ID]],
        trace_id_length=np.where(present[_TRACE_ID], value[row[_TRACE_ID]], 0),
        span_id_at=at[row[_SPAN_ID]],
        span_id_length=span_length,
        span_id=span_id,
        parent_at=at[row[_PARENT]],
        parent_length=parent_length,
        has_parent=parent_length > 0,
        name_at=at[row[_NAME]],
        name_length=np.where(present[_NAME], value[row[_NAME]], 0),
        kind=kind,
        start=np.where(present[_START], _fixed64(data, at[row[_START]]), 0).astype(np.uint64),
        end=np.where(present[_END], _fixed64(data, at[row[_END]]), 0).astype(np.uint64),
        status=status,
        attributes_at=attributes_at,
        attributes_end=attributes_end,
        has_others=present[_EVENT] | present[_LINK],
    )


def _fields(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> _Fields | None:
    """Every top-level field of the messages at ``[starts[i], ends[i])``, read in lockstep. Tags and
    lengths of one byte (fields 1-15, payloads under 128 bytes: nearly all) take the quick way."""
    span = np.flatnonzero(starts < ends)
    position = starts[span]
    end = ends[span]
    parts: list[tuple[npt.NDArray[np.int64], ...]] = []
    steps = 0
    while len(span):
        steps += 1
        if steps > MAX_STEPS:
            return None
        start = position
        tag = data[position].astype(np.int64)
        if tag.max() < 0x80:
            after = position + 1
        else:
            wide, after = _varint(data, position)
            if wide is None:
                return None
            tag = wide.astype(np.int64)
        wire = tag & 7
        size = _SIZE[wire]
        if not size.all():
            return None  # a group, or no wire type at all
        following = data[after].astype(np.int64)
        delimited = wire == 2
        at = after + delimited
        value = np.where(wire == 0, following, 0)
        size = np.where(delimited, following + 1, size)
        long = np.flatnonzero((following >= 0x80) & ((wire == 0) | delimited))
        if len(long):  # varints of more than one byte
            read, past = _varint(data, after[long])
            if read is None:
                return None
            long_value = read.astype(np.int64)
            is_delimited = delimited[long]
            if (long_value < 0).any():
                return None
            value[long] = long_value
            at[long] = np.where(is_delimited, past, at[long])
            size[long] = np.where(is_delimited, past - after[long] + long_value, past - after[long])
        value = np.where(delimited, size - (at - after), value)
        position = after + size
        if (position > end).any():
            return None
        parts.append((span, tag >> 3, wire, start, at, value))
        left = position < end
        span, position, end = span[left], position[left], end[left]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return _Fields(empty, empty, empty, empty, empty, empty)
    return _Fields(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _varint(
    data: npt.NDArray[np.uint8], position: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint64] | None, npt.NDArray[np.int64]]:
    """The varints at ``position`` and the positions after them (``None`` for one over 10 bytes)."""
    byte = data[position]
    value = (byte & 0x7F).astype(np.uint64)
    after = position + 1
    more = np.flatnonzero(byte & 0x80)
    shift = 7
    while len(more):
        if shift > 63:
            return None, after
        byte = data[after[more]]
        value[more] |= (byte & 0x7F).astype(np.uint64) << np.uint64(shift)
        after[more] += 1
        more = more[(byte & 0x80) != 0]
        shift += 7
    return value, after


def _int32(value: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.int64]:
    """Varints of ``int32`` and enum fields as protobuf reads them: the low 32 bits, signed."""
    return value.astype(np.uint32).view(np.int32).astype(np.int64)


def _fixed64(
    data: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], big_endian: bool = False
) -> npt.NDArray[np.uint64]:
    raw = np.ascontiguousarray(data[at[:, None] + _BYTES])
    return raw.view(">u8" if big_endian else "<u8").ravel().astype(np.uint64)


def _status_codes(
    data: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], length: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64] | None:
    """The ``code`` of each span's ``Status`` message (0 when absent)."""
    codes = np.zeros(len(at), dtype=np.int64)
    present = np.flatnonzero(length > 0)
    if not len(present):
        return codes
    starts = at[present]
    fields = _fields(data, starts, starts + length[present])
    if fields is None:
        return None
    rows = np.flatnonzero(fields.number == _STATUS_CODE)
    if (fields.wire[rows] != 0).any() or len(np.unique(fields.span[rows])) != len(rows):
        return None
    codes[present[fields.span[rows]]] = _int32(fields.value[rows])
    return codes
