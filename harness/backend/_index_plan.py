"""What a trace must contain for a TraceQL query to match it: a condition the trace index can check.

The plan is necessary, never sufficient: a trace it rules out cannot match, a trace it keeps is still
evaluated in full. ``{ resource.service.name = "api" && name = "GET /x" }`` needs a span of service
``api`` and a span named ``GET /x``; ``A >> B`` needs what A needs and what B needs; ``A || B`` what
either needs; ``A !> B`` only what B needs. What the index does not know (``!=``, regexes, arithmetic,
``nil``) needs nothing, so it rules nothing out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hoptrace.harness.traceql import (
    Attribute,
    BinaryOperation,
    Duration,
    Intrinsic,
    Pipeline,
    SpansetFilter,
    SpansetOperation,
    Static,
)

Posting = tuple[str, ...]
"""An index key: ``("name", "GET /x")``, ``("kind", "server")``, ``("attr", "span", "k", "v")``..."""


@dataclass(frozen=True, slots=True)
class Has:
    """The trace has a span with this posting."""

    posting: Posting


@dataclass(frozen=True, slots=True)
class LongerThan:
    """The trace has a span longer than ``nanos`` (``>``) or at least that long (``>=``)."""

    nanos: float
    inclusive: bool


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Requirement, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Requirement, ...]


Requirement = Has | LongerThan | AllOf | AnyOf | None
"""``None``: nothing known, every trace may match."""

_INTRINSIC_POSTINGS = {"name": "name", "kind": "kind", "status": "status", "rootName": "rootName"}
_INTRINSIC_POSTINGS["rootServiceName"] = "rootService"
SCOPE_INTRINSICS = ("instrumentation:name", "instrumentation:version")
"""Indexed, when queries compare them, as ``("attr", "intrinsic", name, value)`` postings."""


def value_key(value: object) -> str:
    """An attribute value as a posting key: strings as themselves, numbers by value (``1 = 1.0``, as
    TraceQL compares them). Booleans and other values are not indexed (``""``)."""
    if isinstance(value, str):
        return "s" + value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "n" + repr(float(value))
    return ""


def plan(pipeline: Pipeline) -> Requirement:
    """The requirement every trace ``pipeline`` matches satisfies (``None`` if there is none)."""
    return _all(tuple(_stage(stage) for stage in pipeline.stages))


def wanted_attributes(requirement: Requirement) -> set[tuple[str, str]]:
    """The ``(scope, key)`` attribute pairs the requirement asks the index about."""
    if isinstance(requirement, Has) and requirement.posting[0] == "attr":
        return {(requirement.posting[1], requirement.posting[2])}
    if isinstance(requirement, AllOf | AnyOf):
        return set().union(*(wanted_attributes(part) for part in requirement.parts))
    return set()


def _all(parts: tuple[Requirement, ...]) -> Requirement:
    known = tuple(part for part in parts if part is not None)
    if not known:
        return None
    return known[0] if len(known) == 1 else AllOf(known)


def _any(left: Requirement, right: Requirement) -> Requirement:
    """Either side; unknown when a side is unknown or a duration floor (postings cannot union it)."""
    if left is None or right is None or has_floor(left) or has_floor(right):
        return None
    return AnyOf((left, right))


def has_floor(requirement: Requirement) -> bool:
    """Whether the requirement includes a :class:`LongerThan` (checked per trace, not by postings)."""
    if isinstance(requirement, LongerThan):
        return True
    if isinstance(requirement, AllOf | AnyOf):
        return any(has_floor(part) for part in requirement.parts)
    return False


def _stage(stage: object) -> Requirement:
    if isinstance(stage, Pipeline):
        return plan(stage)
    if isinstance(stage, SpansetFilter):
        return None if stage.expression is None else _field(stage.expression)
    if isinstance(stage, SpansetOperation):
        left, right = _stage(stage.left), _stage(stage.right)
        if stage.op == "||":
            return _any(left, right)
        if stage.op.startswith("!"):
            return right
        return _all((left, right))
    return None  # scalar filters, by(), coalesce(), select() add no requirement of their own


def _field(expression: object) -> Requirement:
    if not isinstance(expression, BinaryOperation):
        return None
    op = expression.op
    if op == "&&":
        return _all((_field(expression.left), _field(expression.right)))
    if op == "||":
        return _any(_field(expression.left), _field(expression.right))
    field, value = expression.left, expression.right
    if isinstance(field, Static):
        field, value = value, field
        op = {">": "<", "<": ">", ">=": "<=", "<=": ">="}.get(op, op)
    if not isinstance(value, Static) or not isinstance(field, Attribute | Intrinsic):
        return None
    if op in (">", ">=") and field == Intrinsic("duration") and isinstance(value.value, Duration):
        return LongerThan(value.value.nanos, op == ">=")
    if op != "=":
        return None
    return _equals(field, value.value)


def _equals(field: Attribute | Intrinsic, value: object) -> Requirement:
    if isinstance(value, bool) or not isinstance(value, str | int | Enum):
        return None
    text: str | int = str(value.value) if isinstance(value, Enum) else value
    if isinstance(field, Intrinsic):
        if field.name in SCOPE_INTRINSICS and isinstance(text, str):
            return Has(("attr", "intrinsic", field.name, value_key(text)))
        name = _INTRINSIC_POSTINGS.get(field.name)
        return None if name is None or not isinstance(text, str) else Has((name, text))
    if field.parent:
        return None
    if field.scope in ("span", "resource", "instrumentation"):
        return Has(("attr", field.scope, field.name, value_key(text)))
    if field.scope == "":
        return AnyOf(
            (
                Has(("attr", "span", field.name, value_key(text))),
                Has(("attr", "resource", field.name, value_key(text))),
            )
        )
    return None
