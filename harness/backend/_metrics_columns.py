"""TraceQL metrics from the span columns (:mod:`._span_columns`), without decoding a trace.

It answers the first stage of the shapes Grafana's Explore and Traces Drilldown send most:
``{ filter } | f() by (fields)`` where

- ``filter`` is an ``&&`` of conditions each either over the service (``resource.service.name``),
  ``name``, ``kind`` and ``status`` alone (any TraceQL expression over them), or comparing ``duration``
  with a number or duration literal;
- ``by()`` names only those four fields;
- ``f`` is ``rate``, ``count_over_time``, or one of ``histogram_over_time``, ``quantile_over_time``,
  ``min/max/avg/sum_over_time`` of ``duration``.

It yields exactly what the general evaluator (``_metrics_engine``) gathers: the same values per series
and interval (for quantiles, the same count per bucket), in the order that evaluator visits spans (traces
in index order, then spans by start time and span id), so sums add up alike and the same first spans
become exemplars. Conditions on the four fields are decided by the general evaluator itself, once per
distinct combination of them. For any other shape :func:`gather_from_columns` returns ``None`` and the
general evaluator answers.

What it reports as inspected: the traces with a span that the filter keeps in the window, their spans
and bytes. (The general evaluator counts the traces its index could not rule out that have a span in the
window: the same traces for an unfiltered query, maybe more for a filtered one.)
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hoptrace.harness._model import Span
from hoptrace.harness.backend._metrics_series import Exemplar, Labels, label_name, label_value
from hoptrace.harness.backend._span_columns import ColumnsView, SpanKey
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.traceql import (
    Attribute,
    BinaryOperation,
    Duration,
    FieldExpression,
    Intrinsic,
    MetricsQuery,
    SpansetFilter,
    Static,
    TraceView,
    UnaryOperation,
    evaluate_field,
    field_value,
)

if TYPE_CHECKING:
    from hoptrace.harness.backend._metrics_engine import Inspected, MetricsWindow

Observed = list[float] | Counter[float]
"""What one interval observed: its values, or, for ``quantile_over_time``, how many fell in each bucket."""
Gathered = tuple[dict[Labels, dict[int, Observed]], dict[Labels, dict[int, Exemplar]]]
"""Per series labels: what each interval observed, and the exemplar of each interval."""

_SERVICE = Attribute("resource", "service.name")
_KEY_INTRINSICS = {"name", "kind", "status"}
_DURATION = Intrinsic("duration")
_COUNTING = {"rate", "count_over_time"}
_OF_DURATION = {"histogram_over_time", "quantile_over_time", "min_over_time", "max_over_time"}
_OF_DURATION |= {"avg_over_time", "sum_over_time"}
_IN_ORDER = {"avg_over_time", "sum_over_time"}
_BUCKETED = {"histogram_over_time", "quantile_over_time"}
"""Functions of power-of-two buckets (see ``_log2_histogram``)."""
"""Functions whose result depends on the order values are added in (floating-point sums)."""
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "=": "=", "!=": "!="}
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class _Plan:
    key_tests: tuple[FieldExpression, ...]
    duration_tests: tuple[tuple[str, float], ...]


def _plan(query: MetricsQuery) -> _Plan | None:
    if query.compare is not None:
        return None
    if query.function in _COUNTING:
        if query.attribute is not None:
            return None
    elif query.function not in _OF_DURATION or query.attribute != _DURATION:
        return None
    if not all(_over_key_fields(field) for field in query.by):
        return None
    stages = query.pipeline.stages
    if len(stages) != 1 or not isinstance(stages[0], SpansetFilter):
        return None
    key_tests: list[FieldExpression] = []
    duration_tests: list[tuple[str, float]] = []
    for condition in _conjuncts(stages[0].expression):
        if _over_key_fields(condition):
            key_tests.append(condition)
            continue
        test = _duration_test(condition)
        if test is None:
            return None
        duration_tests.append(test)
    return _Plan(tuple(key_tests), tuple(duration_tests))


def _conjuncts(expression: FieldExpression | None) -> list[FieldExpression]:
    if expression is None:
        return []
    if isinstance(expression, BinaryOperation) and expression.op == "&&":
        return [*_conjuncts(expression.left), *_conjuncts(expression.right)]
    return [expression]


def _over_key_fields(expression: FieldExpression) -> bool:
    """Whether ``expression`` reads nothing but literals, the service, name, kind and status."""
    if isinstance(expression, Static):
        return True
    if isinstance(expression, Intrinsic):
        return expression.name in _KEY_INTRINSICS
    if isinstance(expression, Attribute):
        return expression == _SERVICE
    if isinstance(expression, UnaryOperation):
        return _over_key_fields(expression.operand)
    return _over_key_fields(expression.left) and _over_key_fields(expression.right)


def _duration_test(condition: FieldExpression) -> tuple[str, float] | None:
    """``(op, nanos)`` for ``duration op literal`` (either way round), else ``None``."""
    if not isinstance(condition, BinaryOperation) or condition.op not in _FLIP or condition.pattern:
        return None
    op, field, literal = condition.op, condition.left, condition.right
    if isinstance(field, Static):
        op, field, literal = _FLIP[op], literal, field
    if field != _DURATION or not isinstance(literal, Static):
        return None
    value = literal.value
    if isinstance(value, Duration):
        return op, value.nanos
    if isinstance(value, int | float) and not isinstance(value, bool):
        return op, value  # compared as numbers, nanoseconds (as the general evaluator does)
    return None


def gather_from_columns(
    store: TraceStore, query: MetricsQuery, window: MetricsWindow, seen: Inspected
) -> Gathered | None:
    """The values and exemplars ``query`` gathers over ``window``, counting what it read into ``seen``;
    ``None`` when the columns cannot answer it. CPU bound."""
    plan = _plan(query)
    if plan is None or window.start_ns < 0 or window.end_ns > _UINT64_MAX:
        return None
    index = index_for(store)
    # Through the store's query gate: time-sliced against ingest, QueryTimeout past the deadline.
    with store.query_gate.admit() as clock:
        view = index.columns_now(clock.tick)
        if view is None:
            return None
        clock.tick()
        return _gather(view, plan, query, window, seen)


def _gather(
    view: ColumnsView, plan: _Plan, query: MetricsQuery, window: MetricsWindow, seen: Inspected
) -> Gathered:
    low = np.uint64(window.start_ns)
    in_window = view.live & (view.start >= low) & (view.start < np.uint64(window.end_ns))

    keys = [_synthetic(key) for key in view.keys]
    key_ok = np.array(
        [all(evaluate_field(test, span, trace) is True for test in plan.key_tests) for span, trace in keys],
        dtype=bool,
    )
    rows = np.flatnonzero(in_window & key_ok[view.key]) if keys else np.flatnonzero(in_window)
    for op, nanos in plan.duration_tests:
        rows = rows[_compare(view.duration[rows], op, nanos)]
    _count_inspected(view, rows, seen)

    # Series labels per key, numbered as the general evaluator's dict tells them apart.
    label_numbers: dict[Labels, int] = {}
    key_labels: list[Labels] = []
    for span, trace in keys:
        labels: Labels = tuple(
            (label_name(field), label_value(field_value(field, span, trace))) for field in query.by
        ) or (("__name__", query.function),)
        key_labels.append(labels)
        label_numbers.setdefault(labels, len(label_numbers))
    key_label = np.array([label_numbers[labels] for labels in key_labels], dtype=np.int64)
    label_of_row = key_label[view.key[rows]]
    powers = None
    if query.function in _BUCKETED:  # values below 2 count in no bucket, and nowhere
        durations = view.duration[rows]
        kept = durations >= 2
        rows, label_of_row = rows[kept], label_of_row[kept]
        powers = _bucket_powers(durations[kept])
        if query.function == "histogram_over_time":  # one series per label and bucket (2^1 to 2^64)
            label_of_row = label_of_row * 65 + powers
    interval = ((view.start[rows] - low) // np.uint64(window.step_ns)).astype(np.int64)
    numbers, group = _dense(label_of_row * window.intervals + interval)
    firsts = _first_rows(view, rows, group, len(numbers))
    values_by_group = _values(view, rows, group, len(numbers), query.function, powers)
    return _assemble(view, query, window, key_labels, numbers, firsts, values_by_group)


def _assemble(
    view: ColumnsView,
    query: MetricsQuery,
    window: MetricsWindow,
    key_labels: list[Labels],
    numbers: npt.NDArray[np.int64],
    firsts: npt.NDArray[np.int64],
    values_by_group: list[Observed],
) -> Gathered:
    """The groups as the general evaluator builds them: in the order it meets each group's first span,
    labelled (and exemplified) by that span."""
    function = query.function
    histogram = function == "histogram_over_time"
    first_seq = view.slot_seq[view.slot[firsts]].tolist()
    first_start, first_id = view.start[firsts].tolist(), view.span_id[firsts].tolist()
    order = sorted(range(len(numbers)), key=lambda i: (first_seq[i], first_start[i], first_id[i], firsts[i]))
    values: dict[Labels, dict[int, Observed]] = {}
    exemplars: dict[Labels, dict[int, Exemplar]] = {}
    for i in order:
        label_number, interval = divmod(int(numbers[i]), window.intervals)
        first = int(firsts[i])
        labels = key_labels[int(view.key[first])]
        if histogram:
            labels = (*labels, ("__bucket", _bucket_label(label_number % 65)))
        values.setdefault(labels, {})[interval] = values_by_group[i]
        found = exemplars.setdefault(labels, {})
        if len(found) < window.max_exemplars:
            counted = function in _COUNTING or histogram
            found[interval] = Exemplar(
                view.slot_trace[int(view.slot[first])].hex(),
                f"{int(view.span_id[first]):016x}",
                math.nan if counted else int(view.duration[first]) / 1e9,
                int(view.start[first]) // 1_000_000,
                labels,
            )
    return values, exemplars


def _dense(
    numbers: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct group numbers (ascending) and, per row, the position of its number among them."""
    if not len(numbers):
        return numbers, numbers
    top = int(numbers.max()) + 1
    if top > 4 * len(numbers) + 65_536:  # sparse: sort
        present, positions = np.unique(numbers, return_inverse=True)
        return present, positions.reshape(-1)
    present = np.flatnonzero(np.bincount(numbers, minlength=top))
    positions = np.zeros(top, dtype=np.int64)
    positions[present] = np.arange(len(present))
    return present, positions[numbers]


def _count_inspected(view: ColumnsView, rows: npt.NDArray[np.int64], seen: Inspected) -> None:
    slots = np.flatnonzero(np.bincount(view.slot[rows], minlength=len(view.slot_trace)))
    seen.traces += len(slots)
    seen.spans += int(view.slot_spans[slots].sum())
    seen.bytes += int(view.slot_bytes[slots].sum())


@functools.lru_cache(maxsize=65_536)
def _synthetic(key: SpanKey) -> tuple[Span, TraceView]:
    """A span with just the key's fields, for the general evaluator to decide conditions and labels."""
    span = Span(
        trace_id="0" * 32,
        span_id="0" * 16,
        parent_span_id=None,
        name=key.name,
        kind=key.kind,
        status=key.status,
        status_message="",
        start_time_unix_nano=0,
        end_time_unix_nano=0,
        service_name="",
        resource_attributes={"service.name": key.service} if key.has_service else {},
    )
    return span, TraceView([span])


def _compare(durations: npt.NDArray[np.uint64], op: str, nanos: float) -> npt.NDArray[np.bool_]:
    """``durations op nanos`` exactly as Python compares an int with ``nanos``."""
    if math.isnan(nanos):
        return np.full(len(durations), op == "!=")
    if op in ("=", "!="):
        equal = (
            durations == np.uint64(int(nanos))
            if float(nanos).is_integer() and 0 <= nanos <= _UINT64_MAX
            else np.zeros(len(durations), dtype=bool)
        )
        return equal if op == "=" else ~equal
    if op in (">", ">="):  # durations >= the least integer that passes
        least = math.inf if nanos == math.inf else math.floor(nanos) + 1 if op == ">" else math.ceil(nanos)
        if least <= 0:
            return np.ones(len(durations), dtype=bool)
        if least > _UINT64_MAX:
            return np.zeros(len(durations), dtype=bool)
        return durations >= np.uint64(least)
    most = -math.inf if nanos == -math.inf else math.ceil(nanos) - 1 if op == "<" else math.floor(nanos)
    if most < 0:
        return np.zeros(len(durations), dtype=bool)
    if most >= _UINT64_MAX:
        return np.ones(len(durations), dtype=bool)
    return durations <= np.uint64(most)


def _bucket_powers(durations: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Per duration ``d >= 2``, the power of two of its bucket: ``(d - 1).bit_length()``, as
    ``log2_bucket`` computes it."""
    below = durations - np.uint64(1)
    _, powers = np.frexp(below.astype(np.float64))  # exact while the float is: below 2**53
    powers = powers.astype(np.int64)
    for position in np.flatnonzero(powers > 53).tolist():  # a float may have rounded up: use the int
        powers[position] = int(below[position]).bit_length()
    return powers


def _bucket_label(power: int) -> float:
    """A duration bucket's label, in seconds, as ``log2_bucket`` writes it."""
    return float(1 << power) / 1e9


def _first_rows(
    view: ColumnsView, rows: npt.NDArray[np.int64], group: npt.NDArray[np.int64], groups: int
) -> npt.NDArray[np.int64]:
    """Per present group (ascending), its first row in the general evaluator's order: the trace with the
    lowest sequence number, then the earliest start, the lowest span id, the first stored."""
    if not len(rows):
        return rows
    seq = view.slot_seq[view.slot[rows]]
    lowest = np.full(groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(lowest, group, seq)
    candidates = np.flatnonzero(seq == lowest[group])  # the rows of each group's first trace
    rows, group = rows[candidates], group[candidates]
    order = np.lexsort((rows, view.span_id[rows], view.start[rows], group))
    rows, group = rows[order], group[order]
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    return rows[starts]


def _values(
    view: ColumnsView,
    rows: npt.NDArray[np.int64],
    group: npt.NDArray[np.int64],
    groups: int,
    function: str,
    powers: npt.NDArray[np.int64] | None,
) -> list[Observed]:
    """Per group number, the values the general evaluator appends for it, in its order (where the
    order matters)."""
    counts = np.bincount(group, minlength=groups)
    if function in _COUNTING or function == "histogram_over_time":
        return [[1.0] * count for count in counts.tolist()]
    if function == "quantile_over_time":  # bucket labels, counted per group
        assert powers is not None
        per_power = np.bincount(group * 65 + powers, minlength=groups * 65).reshape(groups, 65)
        return [
            Counter({_bucket_label(power): count for power, count in enumerate(row) if count})
            for row in per_power.tolist()
        ]
    if function in _IN_ORDER:  # the general evaluator's order: trace sequence, start, span id, row
        order = np.lexsort((rows, view.span_id[rows], view.start[rows], view.slot_seq[view.slot[rows]]))
        rows, group = rows[order], group[order]
    by_group = np.argsort(group.astype(np.uint16) if groups < 2**16 else group, kind="stable")
    seconds = (view.duration[rows[by_group]].astype(np.float64) / 1e9).tolist()
    bounds = pairwise(np.concatenate(([0], np.cumsum(counts))).tolist())
    return [seconds[low:high] for low, high in bounds]
