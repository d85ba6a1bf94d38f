"""TraceQL metrics over the store: the first stage (``rate()``, ``*_over_time()``, ``compare()``) turns
matched spans into time series; :mod:`._metrics_series` does the rest.

A span counts in the interval its start time falls in: interval ``i`` covers
``[start + i*step, start + (i+1)*step)``. Durations are reported in seconds, as Tempo reports them.
Ungrouped series are labelled ``__name__=<function>``, quantiles add ``p``, histogram buckets add
``__bucket`` (a power of two; seconds for durations), ``compare()`` adds ``__meta_type``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hoptrace.harness._model import Span
from hoptrace.harness.backend._index_plan import plan, wanted_attributes
from hoptrace.harness.backend._log2_histogram import log2_bucket, log2_quantile
from hoptrace.harness.backend._metrics_columns import Gathered, Observed, gather_from_columns
from hoptrace.harness.backend._metrics_series import (
    Exemplar,
    Labels,
    Series,
    SeriesSet,
    apply_stage,
    combine,
    label_name,
    label_value,
)
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.traceql import (
    Duration,
    MetricsMath,
    MetricsQuery,
    MetricsRoot,
    TraceView,
    Value,
    evaluate_field,
    evaluate_pipeline,
    field_value,
)

_BUCKETED = {"histogram_over_time", "quantile_over_time"}
_VALUE_FUNCTIONS = {"min_over_time", "max_over_time", "avg_over_time", "sum_over_time", "quantile_over_time"}


@dataclass(frozen=True, slots=True)
class MetricsWindow:
    """The time range (unix nanoseconds, end exclusive) cut into ``step`` intervals."""

    start_ns: int
    end_ns: int
    step_ns: int
    max_exemplars: int = 100

    @property
    def intervals(self) -> int:
        return max(1, math.ceil((self.end_ns - self.start_ns) / self.step_ns))

    def timestamp_ms(self, interval: int) -> int:
        return (self.start_ns + interval * self.step_ns) // 1_000_000


@dataclass(slots=True)
class Inspected:
    traces: int = 0
    spans: int = 0
    bytes: int = 0


def evaluate_metrics(
    store: TraceStore, root: MetricsRoot, window: MetricsWindow
) -> tuple[SeriesSet, Inspected]:
    """Every series ``root`` yields over ``window``, and what was read to compute them. CPU bound."""
    inspected = Inspected()
    result = _expression(store, root.expression, window, inspected)
    if not isinstance(result, dict):  # pragma: no cover - the parser requires a metrics query
        return {}, inspected
    for stage in root.second_stages:
        result = apply_stage(result, stage)
    return result, inspected


def _expression(
    store: TraceStore, expression: MetricsMath | MetricsQuery | float, window: MetricsWindow, seen: Inspected
) -> SeriesSet | float:
    if isinstance(expression, float):
        return expression
    if isinstance(expression, MetricsMath):
        left = _operand(expression.left, _expression(store, expression.left, window, seen))
        right = _operand(expression.right, _expression(store, expression.right, window, seen))
        return combine(expression.op, left, right)
    series = (
        _compare(store, expression, window, seen)
        if expression.compare
        else _query(store, expression, window, seen)
    )
    for stage in expression.second_stages:
        series = apply_stage(series, stage)
    return series


_ZERO_WHEN_EMPTY = {"rate", "count_over_time", "histogram_over_time", "quantile_over_time"}


def _operand(expression: MetricsMath | MetricsQuery | float, value: SeriesSet | float) -> SeriesSet | float:
    """A query's series as an operand of arithmetic: an interval without spans has no value (Tempo's
    documentation: the sub-query is NaN there), where the query alone reports 0."""
    if not isinstance(expression, MetricsQuery) or expression.function not in _ZERO_WHEN_EMPTY:
        return value
    assert isinstance(value, dict)
    for one in value.values():
        one.samples = {i: v for i, v in one.samples.items() if v != 0}
    return value


def _matched_spans(
    store: TraceStore, query: MetricsQuery, window: MetricsWindow, seen: Inspected
) -> Iterator[tuple[Span, TraceView, int]]:
    """``(span, trace, interval)`` for every span the query's pipeline keeps inside the window."""
    start, end, step = window.start_ns, window.end_ns, window.step_ns
    # Through the store's query gate: time-sliced against ingest, QueryTimeout past the deadline.
    requirement = plan(query.pipeline)
    index = index_for(store)
    with store.query_gate.admit() as clock:
        index.refresh(wanted_attributes(requirement), clock.tick)
        for trace_id in reversed(index.candidates(requirement, start, end)):  # oldest first
            clock.tick()
            records = store.records(trace_id)
            if not records:
                continue
            spans = store.decoded(trace_id, records)
            if not any(start <= span.start_time_unix_nano < end for span in spans):
                continue
            seen.traces += 1
            seen.spans += len(spans)
            seen.bytes += sum(len(record) for _, record in records)
            trace = TraceView(spans)
            for span in evaluate_pipeline(query.pipeline, trace):
                if start <= span.start_time_unix_nano < end:
                    yield span, trace, (span.start_time_unix_nano - start) // step


def _number(value: Value) -> float | None:
    if isinstance(value, Duration):
        return value.nanos / 1e9
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _query(store: TraceStore, query: MetricsQuery, window: MetricsWindow, seen: Inspected) -> SeriesSet:
    gathered = gather_from_columns(store, query, window, seen)
    values, exemplars = gathered if gathered is not None else _gather(store, query, window, seen)
    if query.function == "quantile_over_time":
        return _quantiles(query.quantiles, values, exemplars, window)
    result: SeriesSet = {}
    for labels, by_interval in values.items():
        found = sorted(exemplars.get(labels, {}).values(), key=lambda e: e.timestamp_ms)
        samples = _reduce(query.function, by_interval, window)
        result[labels] = Series(labels, samples, found)
    return result


def _gather(store: TraceStore, query: MetricsQuery, window: MetricsWindow, seen: Inspected) -> Gathered:
    """Per series labels, the values each interval observed and its exemplar, from decoded traces (what
    :func:`gather_from_columns` yields faster for the shapes it covers)."""
    function = query.function
    values: dict[Labels, dict[int, Observed]] = defaultdict(lambda: defaultdict(list))
    exemplars: dict[Labels, dict[int, Exemplar]] = defaultdict(dict)
    for span, trace, interval in _matched_spans(store, query, window, seen):
        labels: Labels = tuple((label_name(f), label_value(field_value(f, span, trace))) for f in query.by)
        if not labels:
            labels = (("__name__", function),)
        observed = 1.0
        exemplar_value = math.nan
        if query.attribute is not None:
            raw = field_value(query.attribute, span, trace)
            if function in _BUCKETED:
                bucket = log2_bucket(raw)
                if bucket is None:
                    continue
                if function == "histogram_over_time":
                    labels = (*labels, ("__bucket", bucket))
                else:
                    observed, exemplar_value = bucket, _number(raw) or math.nan
            else:
                number = _number(raw)
                if number is None:
                    continue
                observed = exemplar_value = number
        observations = values[labels][interval]
        assert isinstance(observations, list)
        observations.append(observed)
        if interval not in exemplars[labels] and len(exemplars[labels]) < window.max_exemplars:
            exemplars[labels][interval] = Exemplar(
                span.trace_id, span.span_id, exemplar_value, span.start_time_unix_nano // 1_000_000, labels
            )
    return values, exemplars


def _reduce(function: str, by_interval: dict[int, Observed], window: MetricsWindow) -> dict[int, float]:
    """The samples of a series from the values of each interval (lists: only quantiles count buckets)."""
    if function in ("rate", "count_over_time", "histogram_over_time"):
        scale = 1e9 / window.step_ns if function == "rate" else 1.0
        return {i: len(by_interval.get(i, ())) * scale for i in range(window.intervals)}
    if function == "min_over_time":
        return {i: min(v) for i, v in by_interval.items()}
    if function == "max_over_time":
        return {i: max(v) for i, v in by_interval.items()}
    if function == "sum_over_time":
        return {i: sum(v) for i, v in by_interval.items()}
    return {i: sum(v) / len(v) for i, v in by_interval.items()}  # avg_over_time


def _quantiles(
    quantiles: tuple[float, ...],
    buckets: dict[Labels, dict[int, Observed]],
    exemplars: dict[Labels, dict[int, Exemplar]],
    window: MetricsWindow,
) -> SeriesSet:
    """One series per group and quantile, from the power-of-two buckets of each interval (see
    :mod:`._log2_histogram`). Each exemplar goes to the quantile whose value over the whole query is
    nearest to its own, as Tempo assigns them."""
    counted = {
        labels: {i: v if isinstance(v, Counter) else Counter(v) for i, v in by_interval.items()}
        for labels, by_interval in buckets.items()
    }
    overall: Counter[float] = Counter()
    for by_interval in counted.values():
        for interval_counts in by_interval.values():
            overall.update(interval_counts)
    overall_values = [log2_quantile(quantile, overall) for quantile in quantiles]
    result: SeriesSet = {}
    for labels, counts in counted.items():
        nearest: dict[int, list[Exemplar]] = defaultdict(list)
        for exemplar in sorted(exemplars.get(labels, {}).values(), key=lambda e: e.timestamp_ms):
            distances = [abs(exemplar.value - value) for value in overall_values]
            nearest[distances.index(min(distances))].append(exemplar)
        for position, quantile in enumerate(quantiles):
            quantile_labels = (*labels, ("p", quantile))
            samples = {i: log2_quantile(quantile, counts.get(i, {})) for i in range(window.intervals)}
            result[quantile_labels] = Series(quantile_labels, samples, nearest[position])
    return result


def _compare(store: TraceStore, query: MetricsQuery, window: MetricsWindow, seen: Inspected) -> SeriesSet:
    """``compare(filter, topN, start, end)``: per attribute value, how many spans match ``filter``
    (selection) and how many do not (baseline), with the totals per attribute; the ``topN`` most frequent
    values of each. With ``start`` and ``end`` (unix nanoseconds, both non-zero), only spans that start
    after ``start`` and at or before ``end`` can be selected, as Tempo's selection window."""
    assert query.compare is not None
    spanset_filter, top, selection_start, selection_end = query.compare
    windowed = selection_start > 0 and selection_end > 0
    counts: dict[tuple[str, str, Any], Counter[int]] = defaultdict(Counter)
    totals: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    for span, trace, interval in _matched_spans(store, query, window, seen):
        expression = spanset_filter.expression
        in_window = not windowed or selection_start < span.start_time_unix_nano <= selection_end
        selected = in_window and (expression is None or evaluate_field(expression, span, trace) is True)
        kind = "selection" if selected else "baseline"
        for name, value in _comparable_fields(span):
            counts[(kind, name, value)][interval] += 1
            totals[(kind, name)][interval] += 1
    result: SeriesSet = {}
    for kind in ("baseline", "selection"):
        by_name: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for (which, name, value), per_interval in counts.items():
            if which == kind:
                by_name[name].append((sum(per_interval.values()), value))
        for name, ranked in by_name.items():
            ranked.sort(key=lambda pair: (-pair[0], str(pair[1])))
            for _, value in ranked[:top]:
                labels: Labels = (("__meta_type", kind), (name, value))
                result[labels] = Series(labels, {i: float(c) for i, c in counts[(kind, name, value)].items()})
        for (which, name), per_interval in totals.items():
            if which == kind:
                labels = (("__meta_type", f"{kind}_total"), (name, None))
                result[labels] = Series(labels, {i: float(c) for i, c in per_interval.items()})
    return result


def _comparable_fields(span: Span) -> Iterator[tuple[str, Any]]:
    yield "name", span.name
    yield "status", str(span.status.value)
    yield "kind", str(span.kind.value)
    for key, value in span.attributes.items():
        yield f"span.{key}", label_value(value)
    for key, value in span.resource_attributes.items():
        yield f"resource.{key}", label_value(value)
    # Tempo compares every attribute of the span, its scope's, its events' and its links' too.
    for key, value in span.scope_attributes.items():
        yield f"instrumentation.{key}", label_value(value)
    for scope, owners in (("event", span.events), ("link", span.links)):
        for owner in owners:
            for key, value in owner.attributes.items():
                yield f"{scope}.{key}", label_value(value)
