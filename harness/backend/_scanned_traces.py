"""Traces the index reads for the first time, read with the scanner (:mod:`._span_scan`) a batch at once.

:func:`scan_new_traces` reads the spans of a batch of traces with one scan, and :func:`quick_signatures`
gives each trace's *quick signature*: its distinct span keys, origins and attribute runs (a span's
serialized attributes as one bytes string: spans of an endpoint repeat them), its roots, and its event and
link facts. Traces of one endpoint share it, so the index works out what a signature gives once
(``TraceShapes.quick_shape``), without parsing a span or an attribute. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from hoptrace.harness.backend._lean_span import LeanSpan
from hoptrace.harness.backend._span_scan import ScannedSpans, scan_spans
from hoptrace.harness.backend._store import SpanOrigin
from hoptrace.harness.backend._trace_shapes import events_and_links

QuickSignature = tuple[
    tuple[int, ...],
    tuple[SpanOrigin, ...],
    tuple[bytes, ...],
    tuple[tuple[SpanOrigin, bytes], ...],
    tuple[tuple[str, bytes], ...],
]
"""A trace's distinct span keys, origins and attribute runs, its roots (origin and UTF-8 name), and its
event and link facts (see ``_trace_shapes.events_and_links``)."""


@dataclass(frozen=True, slots=True)
class NewTraces:
    """The spans of a batch of traces read for the first time, grouped by trace (each trace's in
    arrival order)."""

    trace_ids: list[bytes]
    bounds: list[int]
    """Trace ``t``'s spans are rows ``bounds[t]`` to ``bounds[t + 1]`` of the fields below."""
    sizes: list[int]
    """Each trace's bytes."""
    scan: ScannedSpans
    origins: list[SpanOrigin]
    """Each span's origin."""
    service_of_span: npt.NDArray[np.int64]
    """Each span's position in ``services``."""
    services: list[Any]
    """The distinct ``service.name`` values of the spans' resources (see ``SpanColumns.service_of``)."""
    spans: list[bytes]
    """Each span, serialized."""


def scan_new_traces(traces: list[tuple[bytes, Any, list[Any]]], service_of: Any) -> NewTraces | None:
    """The spans of traces read for the first time, each ``(trace_id, entry, stored)`` with ``stored``
    as :meth:`TraceStore.stored_spans` gives it, read with one scan; ``None`` if the scanner cannot read
    them (see :func:`._span_scan.scan_spans`) or a trace has a span twice (as exporters' retries can
    send it: the store's reads drop byte-identical repeats). ``service_of(resource_attributes)`` gives a
    resource's ``service.name`` value."""
    spans = list(chain.from_iterable(stored[1::2] for _, _, stored in traces))
    scan = scan_spans(spans)
    if scan is None or not (scan.span_id_length == 8).all():  # the span id column holds 8 bytes
        return None
    counts = [len(stored) // 2 for _, _, stored in traces]
    trace_of_span = np.repeat(np.arange(len(traces), dtype=np.uint64), counts)
    order = np.lexsort((scan.span_id, trace_of_span))
    same_trace = trace_of_span[order[1:]] == trace_of_span[order[:-1]]
    if (same_trace & (scan.span_id[order[1:]] == scan.span_id[order[:-1]])).any():
        return None  # a span id twice in one trace: maybe a repeat, which the slow path drops
    bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
    origins = list(chain.from_iterable(stored[0::2] for _, _, stored in traces))
    number: dict[SpanOrigin, int] = {}
    origin_of_span = [number.setdefault(origin, len(number)) for origin in origins]
    distinct: dict[Any, int] = {}
    services: list[Any] = []
    service_of_origin = []
    for origin in number:
        value = service_of(origin.resource_attributes)
        at = distinct.setdefault(_hashable(value), len(distinct))
        if at == len(services):
            services.append(value)
        service_of_origin.append(at)
    return NewTraces(
        trace_ids=[trace_id for trace_id, _, _ in traces],
        bounds=bounds,
        sizes=np.add.reduceat(scan.length, bounds[:-1]).tolist(),
        scan=scan,
        origins=origins,
        service_of_span=np.asarray(service_of_origin, dtype=np.int64)[origin_of_span],
        services=services,
        spans=spans,
    )


def quick_signatures(traces: NewTraces, keys: list[int], names: list[bytes]) -> list[QuickSignature]:
    """Each trace's quick signature (see the module docstring); ``keys`` are the spans' key numbers and
    ``names`` their names (``scan.names()``)."""
    scan = traces.scan
    origins = traces.origins
    runs = scan.attribute_runs()
    roots = np.flatnonzero(~scan.has_parent).tolist()
    root_at = 0
    others: dict[int, tuple[tuple[str, bytes], ...]] = {
        row: events_and_links([LeanSpan.FromString(traces.spans[row])])
        for row in np.flatnonzero(scan.has_others).tolist()
    }
    bounds = traces.bounds
    signatures: list[QuickSignature] = []
    for begin, end in pairwise(bounds):
        first = root_at
        while root_at < len(roots) and roots[root_at] < end:
            root_at += 1
        trace_roots = tuple((origins[row], names[row]) for row in roots[first:root_at])
        other: tuple[tuple[str, bytes], ...] = ()
        if others:
            found = [others[row] for row in range(begin, end) if row in others]
            if found:
                other = tuple(dict.fromkeys(item for items in found for item in items))
        signatures.append(
            (
                tuple(dict.fromkeys(keys[begin:end])),
                tuple(dict.fromkeys(origins[begin:end])),
                tuple(dict.fromkeys(runs[begin:end])),
                trace_roots,
                other,
            )
        )
    return signatures


def _hashable(value: Any) -> Any:
    """A dict key that keeps ``1``, ``1.0``, ``True`` and ``"1"`` apart (and every NaN together)."""
    return (type(value).__name__, repr(value))
