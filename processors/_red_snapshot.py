"""What a scrape reads from :class:`hoptrace.processors.RedMetricsSpanProcessor`: one snapshot per series.

Built only when metrics are read (``snapshot()``): a service that serves no ``/metrics`` never imports this
module (its two dataclasses cost ~1 ms to create at start-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

from hoptrace.processors._red_store import BUCKETS, EXEMPLAR_CELLS, FIRST_BUCKET, FIRST_EXEMPLAR, TOTAL

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

    from hoptrace.processors._red_file import SeriesCells

_NANOS_PER_SECOND = 1e9


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


def from_memory(
    labels: Mapping[str, str],
    cells: tuple[int, ...],
    exemplars: tuple[tuple[SpanContext | None, int, int] | None, ...],
) -> SeriesSnapshot:
    buckets = cells[FIRST_BUCKET:TOTAL]
    return SeriesSnapshot(
        labels=labels,
        count=sum(buckets),
        sum=cells[TOTAL] / _NANOS_PER_SECOND,
        bucket_counts=tuple(accumulate(buckets)),
        exemplars=tuple(None if raw is None else _exemplar(*raw) for raw in exemplars),
    )


def _exemplar(context: SpanContext | None, duration_ns: int, end: int) -> Exemplar | None:
    if context is None or not context.is_valid:
        return None
    return _exemplar_of(context.trace_id, context.span_id, duration_ns, end)


def _exemplar_of(trace_id: int, span_id: int, duration_ns: int, end: int) -> Exemplar:
    return Exemplar(
        trace_id=format(trace_id, "032x"),
        span_id=format(span_id, "016x"),
        value=duration_ns / _NANOS_PER_SECOND,
        time_unix_nano=end,
    )


def merged(entries: list[SeriesCells]) -> list[SeriesSnapshot]:
    """Sum the series of several processes by label set; each bucket keeps the latest exemplar."""
    merged: dict[tuple[tuple[str, str], ...], list[int]] = {}
    labels_of: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for entry in entries:
        key = tuple(entry.labels.items())
        total = merged.get(key)
        if total is None:
            merged[key], labels_of[key] = list(entry.cells), entry.labels
            continue
        for cell in range(FIRST_BUCKET, FIRST_EXEMPLAR):
            total[cell] += entry.cells[cell]
        for index in range(BUCKETS):
            at = FIRST_EXEMPLAR + EXEMPLAR_CELLS * index
            if entry.cells[at + 4] > total[at + 4]:  # a later exemplar
                total[at : at + EXEMPLAR_CELLS] = entry.cells[at : at + EXEMPLAR_CELLS]
    return [_from_cells(labels_of[key], cells) for key, cells in merged.items()]


def _from_cells(labels: Mapping[str, str], cells: list[int]) -> SeriesSnapshot:
    buckets = cells[FIRST_BUCKET:TOTAL]
    exemplars: list[Exemplar | None] = []
    for index in range(BUCKETS):
        at = FIRST_EXEMPLAR + EXEMPLAR_CELLS * index
        high, low, span_id, duration, end = cells[at : at + EXEMPLAR_CELLS]
        valid = end and (high or low) and span_id
        exemplars.append(_exemplar_of(high << 64 | low, span_id, duration, end) if valid else None)
    return SeriesSnapshot(
        labels=labels,
        count=sum(buckets),
        sum=cells[TOTAL] / _NANOS_PER_SECOND,
        bucket_counts=tuple(accumulate(buckets)),
        exemplars=tuple(exemplars),
    )
