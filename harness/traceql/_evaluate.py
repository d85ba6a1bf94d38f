"""Evaluate a parsed TraceQL pipeline over the spans of one trace, with Tempo's semantics.

- A spanset filter keeps the spans whose expression is ``true``. Values of different types never
  compare equal (``.x = 1`` is false for the string ``"1"``); a missing attribute equals only ``nil``.
- ``=~`` and ``!~`` are fully anchored regular expressions. An array attribute matches if any member
  does (``!=`` and ``!~``: if none does).
- ``A && B`` keeps the spans of both when both match, ``A || B`` the spans of either.
  ``A > B`` keeps the B spans whose parent is an A span, ``A >> B`` those with an A ancestor,
  ``A < B`` the B spans that are a parent of an A span, ``A << B`` those that are an ancestor of one,
  ``A ~ B`` the B spans with an A sibling.
- Each further ``|`` stage works on the spans the previous one kept; ``| count() > 2`` keeps them only if
  the aggregate holds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from hoptrace.harness._model import AttributeValue, Span
from hoptrace.harness.traceql._ast import (
    Attribute,
    Comparison,
    Duration,
    FieldExpression,
    Intrinsic,
    Logical,
    Negation,
    Nil,
    Pipeline,
    ScalarFilter,
    SpansetExpression,
    SpansetFilter,
    Static,
)


class _Missing(Enum):
    MISSING = "missing"


MISSING = _Missing.MISSING
Value = AttributeValue | Duration | Nil | _Missing | Enum | None

_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class TraceView:
    """One trace's spans with the lookups that structural operators and trace intrinsics need."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = list(spans)
        self.by_id = {span.span_id: span for span in self.spans}
        roots = [span for span in self.spans if not span.parent_span_id]
        self.root = min(roots, key=lambda span: span.start_time_unix_nano) if roots else None
        if self.spans:
            start = min(span.start_time_unix_nano for span in self.spans)
            end = max(span.end_time_unix_nano for span in self.spans)
            self.duration_nanos = max(0, end - start)
        else:
            self.duration_nanos = 0

    def ancestors(self, span: Span) -> list[Span]:
        found: list[Span] = []
        seen = {span.span_id}
        parent = self.by_id.get(span.parent_span_id or "")
        while parent is not None and parent.span_id not in seen:
            found.append(parent)
            seen.add(parent.span_id)
            parent = self.by_id.get(parent.parent_span_id or "")
        return found


def evaluate_pipeline(pipeline: Pipeline, trace: TraceView) -> list[Span]:
    """The spans of ``trace`` that the whole pipeline keeps, in ``trace.spans`` order; ``[]`` if none."""
    current = trace.spans
    for stage in pipeline.stages:
        if isinstance(stage, ScalarFilter):
            if not _scalar_holds(stage, current, trace):
                return []
        else:
            current = _spanset(stage, current, trace)
        if not current:
            return []
    return current


def _spanset(expression: SpansetExpression, candidates: list[Span], trace: TraceView) -> list[Span]:
    if isinstance(expression, SpansetFilter):
        if expression.expression is None:
            return candidates
        test = expression.expression
        return [span for span in candidates if _value(test, span, trace) is True]
    left = _spanset(expression.left, candidates, trace)
    if expression.op == "&&" and not left:
        return []
    right = _spanset(expression.right, candidates, trace)
    op = expression.op
    if op == "&&":
        return _union(left, right) if right else []
    if op == "||":
        return _union(left, right)
    if op == ">":
        parents = {span.span_id for span in left}
        return [span for span in right if span.parent_span_id in parents]
    if op == ">>":
        ids = {span.span_id for span in left}
        return [span for span in right if any(a.span_id in ids for a in trace.ancestors(span))]
    if op == "<":
        parent_ids = {span.parent_span_id for span in left}
        return [span for span in right if span.span_id in parent_ids]
    if op == "<<":
        ancestor_ids = {a.span_id for span in left for a in trace.ancestors(span)}
        return [span for span in right if span.span_id in ancestor_ids]
    # "~": same parent, not the same span
    return [
        span
        for span in right
        if any(s.parent_span_id == span.parent_span_id and s.span_id != span.span_id for s in left)
    ]


def _union(left: list[Span], right: list[Span]) -> list[Span]:
    seen = {span.span_id for span in left}
    return left + [span for span in right if span.span_id not in seen]


def _scalar_holds(stage: ScalarFilter, spans: list[Span], trace: TraceView) -> bool:
    aggregate = stage.aggregate
    if aggregate.expression is None:
        result: Value = len(spans)
    else:
        expression = aggregate.expression
        values = [_value(expression, span, trace) for span in spans]
        durations = [v.nanos for v in values if isinstance(v, Duration)]
        numbers = durations or [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if not numbers:
            return False
        if aggregate.function == "avg":
            total: float = sum(numbers) / len(numbers)
        elif aggregate.function == "min":
            total = min(numbers)
        elif aggregate.function == "max":
            total = max(numbers)
        else:
            total = sum(numbers)
        result = Duration(total) if durations else total
    return _compare(stage.op, result, stage.value)


def _value(expression: FieldExpression, span: Span, trace: TraceView) -> Value:
    if isinstance(expression, Static):
        return expression.value
    if isinstance(expression, Attribute):
        return _attribute(expression, span)
    if isinstance(expression, Intrinsic):
        return _intrinsic(expression.name, span, trace)
    if isinstance(expression, Comparison):
        left = _value(expression.left, span, trace)
        if expression.pattern is not None:
            return _regex(expression.op, left, expression)
        return _compare(expression.op, left, _value(expression.right, span, trace))
    if isinstance(expression, Logical):
        left_true = _value(expression.left, span, trace) is True
        if expression.op == "&&":
            return left_true and _value(expression.right, span, trace) is True
        return left_true or _value(expression.right, span, trace) is True
    if isinstance(expression, Negation):
        operand = _value(expression.operand, span, trace)
        return not operand if isinstance(operand, bool) else MISSING
    raise TypeError(f"unknown TraceQL node {expression!r}")  # pragma: no cover - the parser builds no other


def field_value(field: Attribute | Intrinsic, span: Span, trace: TraceView) -> Value:
    """The value of an attribute or intrinsic on ``span`` (:data:`MISSING` when it has none)."""
    if isinstance(field, Attribute):
        return _attribute(field, span)
    return _intrinsic(field.name, span, trace)


def _attribute(attribute: Attribute, span: Span) -> Value:
    if attribute.scope != "resource" and attribute.name in span.attributes:
        return span.attributes[attribute.name]
    if attribute.scope != "span" and attribute.name in span.resource_attributes:
        return span.resource_attributes[attribute.name]
    return MISSING


def _intrinsic(name: str, span: Span, trace: TraceView) -> Value:
    if name == "name":
        return span.name
    if name == "status":
        return span.status
    if name == "kind":
        return span.kind
    if name == "duration":
        return Duration(span.duration_nano)
    if name == "statusMessage":
        return span.status_message
    if name == "spanID":
        return span.span_id
    if name == "parentID":
        return span.parent_span_id or MISSING
    if name == "traceID":
        return span.trace_id
    if name == "traceDuration":
        return Duration(trace.duration_nanos)
    if trace.root is None:
        return MISSING
    if name == "rootName":
        return trace.root.name
    return trace.root.service_name  # rootServiceName


def _type_of(value: Value) -> type:
    if isinstance(value, Enum):
        return type(value)
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float
    return type(value)


def _compare(op: str, left: Value, right: Value) -> bool:
    if isinstance(left, tuple) and not isinstance(right, tuple):
        if op == "!=":
            return not any(_compare("=", member, right) for member in left)
        return any(_compare(op, member, right) for member in left)
    if right is Nil.NIL or left is Nil.NIL:
        other = left if right is Nil.NIL else right
        if op == "=":
            return other is MISSING or other is Nil.NIL
        if op == "!=":
            return other is not MISSING and other is not Nil.NIL
        return False
    if left is MISSING or right is MISSING or _type_of(left) is not _type_of(right):
        return False
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, Enum | bool):
        return False
    if isinstance(left, Duration) and isinstance(right, Duration):
        return _ORDERINGS[op](left.nanos, right.nanos)
    return _ORDERINGS[op](left, right)


def _regex(op: str, left: Value, comparison: Comparison) -> bool:
    pattern = comparison.pattern
    assert pattern is not None
    members = left if isinstance(left, tuple) else (left,)
    matched = any(
        isinstance(member, str) and not isinstance(member, Enum) and pattern.fullmatch(member) is not None
        for member in members
    )
    if op == "=~":
        return matched
    return not matched and left is not MISSING
