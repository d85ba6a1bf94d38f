"""Evaluate TraceQL field expressions on one span, with Tempo's semantics.

- Values of different types never compare equal (``.x = 1`` is false for the string ``"1"``); ints,
  floats and durations compare as numbers. A missing attribute equals only ``nil``.
- ``=~`` and ``!~`` are fully anchored regular expressions. An array attribute (and the ``event.`` and
  ``link.`` scopes, one value per event or link) matches if any member does (``!=``, ``!~``: if none does).
- Arithmetic on a missing value, or a division by zero, gives a missing value.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from enum import Enum
from typing import Any

from hoptrace.harness._model import AttributeValue, OpaqueText, Span
from hoptrace.harness.traceql._ast import (
    Attribute,
    BinaryOperation,
    Duration,
    Field,
    FieldExpression,
    Intrinsic,
    Nil,
    Static,
)
from hoptrace.harness.traceql._trace_view import TraceView


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


def evaluate_field(expression: FieldExpression, span: Span, trace: TraceView) -> Value:
    """The value of ``expression`` on ``span`` (:data:`MISSING` when it has none)."""
    if isinstance(expression, Static):
        return expression.value
    if isinstance(expression, Attribute | Intrinsic):
        return field_value(expression, span, trace)
    if isinstance(expression, BinaryOperation):
        op = expression.op
        left = evaluate_field(expression.left, span, trace)
        if op == "&&":
            return left is True and evaluate_field(expression.right, span, trace) is True
        if op == "||":
            return left is True or evaluate_field(expression.right, span, trace) is True
        if expression.pattern is not None:
            return _regex(op, left, expression)
        right = evaluate_field(expression.right, span, trace)
        if op in _ARITHMETIC:
            return arithmetic(op, left, right)
        return compare(op, left, right)
    operand = evaluate_field(expression.operand, span, trace)
    if expression.op == "exists":
        return operand is not MISSING
    if expression.op == "missing":
        return operand is MISSING
    if expression.op == "!":
        return not operand if isinstance(operand, bool) else MISSING
    return arithmetic("*", -1, operand)


def field_value(field: Field, span: Span, trace: TraceView) -> Value:
    """The value of an attribute or intrinsic on ``span`` (:data:`MISSING` when it has none)."""
    if isinstance(field, Attribute):
        if field.parent:
            index = trace.parents[trace.index_of[id(span)]]
            if index < 0:
                return MISSING
            span = trace.spans[index]
        return _attribute(field, span)
    return _intrinsic(field.name, span, trace)


def _attribute(attribute: Attribute, span: Span) -> Value:
    """The attribute's value; an :class:`OpaqueText` one (bytes, a kvlist) counts as absent, as in Tempo,
    and so do array members of those types."""
    scope, name = attribute.scope, attribute.name
    if scope == "event" or scope == "link":
        owners = span.events if scope == "event" else span.links
        return _members(tuple(o.attributes[name] for o in owners if name in o.attributes))
    if scope == "instrumentation":
        return _comparable(span.scope_attributes.get(name, MISSING))
    if scope != "resource" and name in span.attributes:
        value = _comparable(span.attributes[name])
        if value is not MISSING or scope == "span":
            return value
    if scope != "span" and name in span.resource_attributes:
        return _comparable(span.resource_attributes[name])
    return MISSING


def _comparable(value: Any) -> Value:
    if isinstance(value, OpaqueText):
        return MISSING
    if isinstance(value, tuple) and any(isinstance(member, OpaqueText) for member in value):
        return _members((value,))
    return value  # type: ignore[no-any-return]


def _members(values: tuple[Any, ...]) -> Value:
    flat = tuple(
        m for v in values for m in (v if isinstance(v, tuple) else (v,)) if not isinstance(m, OpaqueText)
    )
    return flat if flat else MISSING


_SPAN_INTRINSICS: dict[str, Callable[[Span], Value]] = {
    "name": lambda span: span.name,
    "status": lambda span: span.status,
    "kind": lambda span: span.kind,
    "duration": lambda span: Duration(span.duration_nano),
    "statusMessage": lambda span: span.status_message,
    "span:id": lambda span: span.span_id,
    "span:parentID": lambda span: span.parent_span_id or MISSING,
    "trace:id": lambda span: span.trace_id,
    "event:name": lambda span: _members(tuple(event.name for event in span.events)),
    "event:timeSinceStart": lambda span: _members(
        tuple(Duration(event.time_unix_nano - span.start_time_unix_nano) for event in span.events)
    ),
    "link:traceID": lambda span: _members(tuple(link.trace_id for link in span.links)),
    "link:spanID": lambda span: _members(tuple(link.span_id for link in span.links)),
    "instrumentation:name": lambda span: span.scope_name or MISSING,
    "instrumentation:version": lambda span: span.scope_version or MISSING,
}


def _intrinsic(name: str, span: Span, trace: TraceView) -> Value:
    read = _SPAN_INTRINSICS.get(name)
    if read is not None:
        return read(span)
    if name == "traceDuration":
        return Duration(trace.duration_nanos)
    if name == "rootName":
        return trace.root.name if trace.root is not None else MISSING
    if name == "rootServiceName":
        return trace.root.service_name if trace.root is not None else MISSING
    index = trace.index_of[id(span)]
    if name == "span:childCount":
        return len(trace.children[index])
    left, right = trace.nested_set
    if name == "nestedSetLeft":
        return left[index]
    if name == "nestedSetRight":
        return right[index]
    parent = trace.parents[index]
    return left[parent] if parent >= 0 else -1  # nestedSetParent


def _number(value: Value) -> float | None:
    if isinstance(value, Duration):
        return value.nanos
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


_ARITHMETIC = {"+", "-", "*", "/", "%", "^"}


def arithmetic(op: str, left: Value, right: Value) -> Value:
    """``left op right`` for numbers and durations (a duration in, a duration out); else MISSING."""
    a, b = _number(left), _number(right)
    if a is None or b is None:
        return MISSING
    if op in "/%" and b == 0:
        return MISSING
    if op == "+":
        result: float = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        result = a * b
    elif op == "/":
        result = int(a / b) if isinstance(a, int) and isinstance(b, int) else a / b
    elif op == "%":
        result = math.fmod(a, b)
    else:
        try:
            result = float(a) ** float(b)
        except (OverflowError, ZeroDivisionError):
            return MISSING
        if isinstance(result, complex):
            return MISSING
    if isinstance(left, Duration) or isinstance(right, Duration):
        return Duration(result)
    return result


def _type_of(value: Value) -> type:
    if isinstance(value, Enum):
        return type(value)
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float | Duration):
        return float
    return type(value)


def compare(op: str, left: Value, right: Value) -> bool:
    """``left op right`` with TraceQL's rules (see the module docstring)."""
    if isinstance(left, tuple) and not isinstance(right, tuple):
        if op == "!=":
            return not any(compare("=", member, right) for member in left)
        return any(compare(op, member, right) for member in left)
    if right is Nil.NIL or left is Nil.NIL:
        other = left if right is Nil.NIL else right
        if op == "=":
            return other is MISSING or other is Nil.NIL
        if op == "!=":
            return other is not MISSING and other is not Nil.NIL
        return False
    if left is MISSING or right is MISSING or _type_of(left) is not _type_of(right):
        return False
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        if op == "=":
            return a == b
        if op == "!=":
            return a != b
        return _ORDERINGS[op](a, b)
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, Enum | bool):
        return False
    return _ORDERINGS[op](left, right)


def _regex(op: str, left: Value, expression: BinaryOperation) -> bool:
    pattern = expression.pattern
    assert pattern is not None
    members = left if isinstance(left, tuple) else (left,)
    matched = any(
        isinstance(member, str) and not isinstance(member, Enum) and pattern.fullmatch(member) is not None
        for member in members
    )
    if op == "=~":
        return matched
    return not matched and left is not MISSING
