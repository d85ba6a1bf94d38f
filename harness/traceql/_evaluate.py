"""Evaluate a parsed TraceQL pipeline over the spans of one trace, with Tempo's semantics.

- A spanset filter keeps the spans whose expression is ``true`` (see :mod:`._values`).
- ``A && B`` keeps the spans of both when both match, ``A || B`` the spans of either; structural
  operators are in :mod:`._structure`. A parenthesised pipeline is one operand.
- Each further ``|`` stage works on the spans the previous one kept. ``| count() > 2`` (any scalar
  filter) keeps a spanset only if it holds; ``| by(x)`` splits each spanset by the value of ``x`` (spans
  without one are dropped), so that later stages see each group alone; ``| coalesce()`` merges the groups
  again; ``| select(...)`` changes nothing here (search returns those fields).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hoptrace.harness._model import Span
from hoptrace.harness.traceql._ast import (
    Aggregate,
    Coalesce,
    Duration,
    FieldExpression,
    GroupBy,
    Pipeline,
    ScalarExpression,
    ScalarFilter,
    ScalarOperation,
    Select,
    SpansetExpression,
    SpansetFilter,
    Static,
)
from hoptrace.harness.traceql._structure import structural
from hoptrace.harness.traceql._trace_view import TraceView
from hoptrace.harness.traceql._values import MISSING, Value, arithmetic, compare, evaluate_field


@dataclass(frozen=True, slots=True)
class Spanset:
    """Spans a pipeline kept together (one per ``by()`` group), in trace order, with the group's values."""

    spans: list[Span]
    by: tuple[tuple[FieldExpression, Value], ...] = ()


@dataclass(slots=True)
class _Group:
    members: list[int]
    by: tuple[tuple[FieldExpression, Value], ...] = ()


def evaluate_spansets(pipeline: Pipeline, trace: TraceView) -> list[Spanset]:
    """The spansets the whole pipeline keeps; ``[]`` if the trace does not match."""
    groups = _run(pipeline, trace, [_Group(list(range(len(trace.spans))))])
    return [Spanset([trace.spans[i] for i in group.members], group.by) for group in groups]


def evaluate_pipeline(pipeline: Pipeline, trace: TraceView) -> list[Span]:
    """The spans of ``trace`` that the whole pipeline keeps, in ``trace.spans`` order; ``[]`` if none."""
    groups = _run(pipeline, trace, [_Group(list(range(len(trace.spans))))])
    if len(groups) == 1:
        return [trace.spans[i] for i in groups[0].members]
    return [trace.spans[i] for i in sorted({i for group in groups for i in group.members})]


def _run(pipeline: Pipeline, trace: TraceView, groups: list[_Group]) -> list[_Group]:
    for stage in pipeline.stages:
        if isinstance(stage, ScalarFilter):
            groups = [group for group in groups if _scalar_holds(stage, group.members, trace)]
        elif isinstance(stage, GroupBy):
            groups = _group_by(stage.expression, groups, trace)
        elif isinstance(stage, Coalesce):
            merged = sorted({i for group in groups for i in group.members})
            groups = [_Group(merged)] if merged else []
        elif isinstance(stage, Select):
            continue
        else:
            kept = (_Group(sorted(_spanset(stage, group.members, trace)), group.by) for group in groups)
            groups = [group for group in kept if group.members]
        if not groups:
            return []
    return groups


def _group_by(expression: FieldExpression, groups: list[_Group], trace: TraceView) -> list[_Group]:
    split: dict[tuple[object, ...], _Group] = {}
    for group in groups:
        for index in group.members:
            value = evaluate_field(expression, trace.spans[index], trace)
            if value is MISSING:
                continue
            key = (*(v for _, v in group.by), value)
            target = split.get(key)
            if target is None:
                target = split[key] = _Group([], (*group.by, (expression, value)))
            target.members.append(index)
    return list(split.values())


def _spanset(expression: SpansetExpression, candidates: Iterable[int], trace: TraceView) -> set[int]:
    if isinstance(expression, SpansetFilter):
        test = expression.expression
        if test is None:
            return set(candidates)
        spans = trace.spans
        return {i for i in candidates if evaluate_field(test, spans[i], trace) is True}
    if isinstance(expression, Pipeline):
        groups = _run(expression, trace, [_Group(sorted(candidates))])
        return {i for group in groups for i in group.members}
    candidates = list(candidates)
    left = _spanset(expression.left, candidates, trace)
    op = expression.op
    if op == "&&" and not left:
        return set()
    right = _spanset(expression.right, candidates, trace)
    if op == "&&":
        return left | right if right else set()
    if op == "||":
        return left | right
    return structural(trace, op, left, right)


def scalar_value(expression: ScalarExpression, members: list[int], trace: TraceView) -> Value:
    """An aggregate (or arithmetic over aggregates and literals) over the spans ``members``."""
    if isinstance(expression, Static):
        return expression.value
    if isinstance(expression, ScalarOperation):
        left = scalar_value(expression.left, members, trace)
        return arithmetic(expression.op, left, scalar_value(expression.right, members, trace))
    return _aggregate(expression, members, trace)


def _aggregate(aggregate: Aggregate, members: list[int], trace: TraceView) -> Value:
    if aggregate.expression is None:
        return len(members)
    values = [evaluate_field(aggregate.expression, trace.spans[i], trace) for i in members]
    durations = [v.nanos for v in values if isinstance(v, Duration)]
    numbers = durations or [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return MISSING
    if aggregate.function == "avg":
        total: float = sum(numbers) / len(numbers)
    elif aggregate.function == "min":
        total = min(numbers)
    elif aggregate.function == "max":
        total = max(numbers)
    else:
        total = sum(numbers)
    return Duration(total) if durations else total


def _scalar_holds(stage: ScalarFilter, members: list[int], trace: TraceView) -> bool:
    left = scalar_value(stage.left, members, trace)
    return compare(stage.op, left, scalar_value(stage.right, members, trace))
