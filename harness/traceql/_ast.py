"""TraceQL's syntax tree: immutable nodes built by the parser and walked by the evaluator."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from hoptrace.harness._model import SpanKind, StatusCode


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration value (literals such as ``150ms``, and the ``duration`` intrinsics), in nanoseconds."""

    nanos: float


class Nil(Enum):
    """``nil``: equal to a missing attribute only."""

    NIL = "nil"


StaticValue = str | int | float | bool | Duration | StatusCode | SpanKind | Nil
"""A literal's value. Statuses and kinds are the model's enums; ``nil`` is :data:`Nil.NIL`."""


@dataclass(frozen=True, slots=True)
class Static:
    value: StaticValue


@dataclass(frozen=True, slots=True)
class Attribute:
    """``span.x`` (scope ``"span"``), ``resource.x`` (``"resource"``), or ``.x`` (scope ``""``: the span's
    attribute if it has one, else the resource's)."""

    scope: str
    name: str


@dataclass(frozen=True, slots=True)
class Intrinsic:
    """A span or trace intrinsic, by its canonical name (``name``, ``duration``, ``rootServiceName``...)."""

    name: str


@dataclass(frozen=True, slots=True)
class Negation:
    operand: FieldExpression


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left op right``; for ``=~`` and ``!~`` the right side's regex is compiled, fully anchored."""

    op: str
    left: FieldExpression
    right: FieldExpression
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class Logical:
    op: str
    """``&&`` or ``||``."""
    left: FieldExpression
    right: FieldExpression


FieldExpression = Static | Attribute | Intrinsic | Negation | Comparison | Logical


@dataclass(frozen=True, slots=True)
class SpansetFilter:
    """``{ expression }``; ``{}`` (``expression is None``) matches every span."""

    expression: FieldExpression | None


@dataclass(frozen=True, slots=True)
class SpansetOperation:
    op: str
    """``&&``, ``||``, ``>``, ``>>``, ``<``, ``<<`` or ``~``."""
    left: SpansetExpression
    right: SpansetExpression


SpansetExpression = SpansetFilter | SpansetOperation


@dataclass(frozen=True, slots=True)
class Aggregate:
    function: str
    """``count``, ``avg``, ``min``, ``max`` or ``sum``."""
    expression: FieldExpression | None


@dataclass(frozen=True, slots=True)
class ScalarFilter:
    """``| count() > 2`` or ``| avg(duration) > 1s``."""

    aggregate: Aggregate
    op: str
    value: int | float | Duration


Stage = SpansetExpression | ScalarFilter


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A whole query: a spanset expression, then each further ``|`` stage in order."""

    stages: tuple[Stage, ...]
    text: str


def referenced_fields(pipeline: Pipeline) -> list[Attribute | Intrinsic]:
    """The attributes and intrinsics a query mentions, first mention first, without repeats.

    Tempo returns these as each matched span's ``attributes`` in search results.
    """
    found: dict[Attribute | Intrinsic, None] = {}

    def visit(node: object) -> None:
        if isinstance(node, Attribute | Intrinsic):
            found.setdefault(node, None)
        elif isinstance(node, Negation):
            visit(node.operand)
        elif isinstance(node, Comparison | Logical | SpansetOperation):
            visit(node.left)
            visit(node.right)
        elif isinstance(node, SpansetFilter):
            visit(node.expression)
        elif isinstance(node, ScalarFilter):
            visit(node.aggregate.expression)

    for stage in pipeline.stages:
        visit(stage)
    return list(found)
