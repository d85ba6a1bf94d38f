"""TraceQL's syntax tree: immutable nodes built by the parser and walked by the evaluators."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from hoptrace.harness._model import SpanKind, StatusCode

if TYPE_CHECKING:
    from hoptrace.harness.traceql._regex import Regex


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


ATTRIBUTE_SCOPES = ("", "span", "resource", "event", "link", "instrumentation")


@dataclass(frozen=True, slots=True)
class Attribute:
    """``span.x`` (scope ``"span"``), ``resource.x``, ``event.x``, ``link.x``, ``instrumentation.x``, or
    ``.x`` (scope ``""``: the span's attribute if it has one, else the resource's). ``parent`` is set for
    ``parent.x`` / ``parent.span.x`` / ``parent.resource.x``: the attribute of the span's parent."""

    scope: str
    name: str
    parent: bool = False


@dataclass(frozen=True, slots=True)
class Intrinsic:
    """A span or trace intrinsic, by its canonical name, Tempo's (``name`` for ``span:name`` too,
    ``rootServiceName`` for ``trace:rootService``, ``span:id``, ``instrumentation:version``...)."""

    name: str


@dataclass(frozen=True, slots=True)
class UnaryOperation:
    """``!x``, ``-x``; ``exists`` for ``x != nil`` and ``missing`` for ``x = nil``."""

    op: str
    operand: FieldExpression


@dataclass(frozen=True, slots=True)
class BinaryOperation:
    """``left op right``: ``&& ||``, comparisons ``= != > >= < <= =~ !~`` and arithmetic ``+ - * / % ^``.

    For ``=~`` and ``!~`` the right side's regex is compiled once, fully anchored, into ``pattern``.
    """

    op: str
    left: FieldExpression
    right: FieldExpression
    pattern: Regex | None = None


FieldExpression = Static | Attribute | Intrinsic | UnaryOperation | BinaryOperation
Field = Attribute | Intrinsic


@dataclass(frozen=True, slots=True)
class SpansetFilter:
    """``{ expression }``; ``{}`` (``expression is None``) matches every span."""

    expression: FieldExpression | None


@dataclass(frozen=True, slots=True)
class SpansetOperation:
    op: str
    """``&&``, ``||`` or a structural operator: ``> >> < << ~``, negated ``!> !>> !< !<< !~``, or union
    ``&> &>> &< &<< &~``."""
    left: SpansetExpression
    right: SpansetExpression


@dataclass(frozen=True, slots=True)
class Aggregate:
    function: str
    """``count``, ``avg``, ``min``, ``max`` or ``sum``."""
    expression: FieldExpression | None


@dataclass(frozen=True, slots=True)
class ScalarOperation:
    """Arithmetic between aggregates and literals: ``max(duration) - min(duration) > 1s``."""

    op: str
    left: ScalarExpression
    right: ScalarExpression


ScalarExpression = Aggregate | Static | ScalarOperation


@dataclass(frozen=True, slots=True)
class ScalarFilter:
    """``| count() > 2``, ``| avg(duration) > 1s``, ``| max(.a) - min(.a) > 3``."""

    op: str
    left: ScalarExpression
    right: ScalarExpression


@dataclass(frozen=True, slots=True)
class GroupBy:
    """``| by(expression)``: later stages work on each group of spans with one value of ``expression``."""

    expression: FieldExpression


@dataclass(frozen=True, slots=True)
class Coalesce:
    """``| coalesce()``: merge the groups ``by()`` made back into one spanset."""


@dataclass(frozen=True, slots=True)
class Select:
    """``| select(a, b)``: also return these fields of every matched span."""

    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A spanset query: its stages in order (a wrapped ``( ... | ... )`` pipeline is itself a stage or
    an operand of a spanset operator), the source text, and its ``with(...)`` hints."""

    stages: tuple[Stage, ...]
    text: str = ""
    hints: tuple[tuple[str, StaticValue], ...] = ()


SpansetExpression = SpansetFilter | SpansetOperation | Pipeline
Stage = SpansetFilter | SpansetOperation | ScalarFilter | GroupBy | Coalesce | Select | Pipeline


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    """``pipeline | function(arguments) by (fields)`` then optional filters and ``topk``/``bottomk``.

    ``function`` is ``rate``, ``count_over_time``, ``min_over_time``, ``max_over_time``,
    ``avg_over_time``, ``sum_over_time``, ``quantile_over_time``, ``histogram_over_time`` or ``compare``.
    """

    pipeline: Pipeline
    function: str
    attribute: Field | None = None
    by: tuple[Field, ...] = ()
    quantiles: tuple[float, ...] = ()
    compare: tuple[SpansetFilter, int, int, int] | None = None
    """``compare(filter, topN, start, end)``'s arguments (start and end in unix nanoseconds; 0 = whole)."""
    second_stages: tuple[tuple[str, float], ...] = ()
    """In order: ``("topk", k)``, ``("bottomk", k)`` or a filter such as ``(">", 10.0)``."""


@dataclass(frozen=True, slots=True)
class MetricsMath:
    """Arithmetic between metrics queries and numbers: ``({...} | rate()) / ({} | rate()) * 100``."""

    op: str
    left: MetricsExpression
    right: MetricsExpression


MetricsExpression = MetricsQuery | MetricsMath | float


@dataclass(frozen=True, slots=True)
class MetricsRoot:
    """A whole metrics query with its ``with(...)`` hints (``sample``, ``exemplars``...)."""

    expression: MetricsExpression
    second_stages: tuple[tuple[str, float], ...] = ()
    """Filters and ``topk``/``bottomk`` applied to the whole expression's series, in order."""
    text: str = ""
    hints: tuple[tuple[str, StaticValue], ...] = ()


def referenced_fields(pipeline: Pipeline) -> list[Field]:
    """The attributes and intrinsics a query mentions, first mention first, without repeats.

    Tempo returns these as each matched span's ``attributes`` in search results.
    """
    found: dict[Field, None] = {}

    def visit(node: object) -> None:
        if isinstance(node, Attribute | Intrinsic):
            found.setdefault(node, None)
        elif isinstance(node, UnaryOperation):
            visit(node.operand)
        elif isinstance(node, BinaryOperation | SpansetOperation | ScalarOperation | ScalarFilter):
            visit(node.left)
            visit(node.right)
        elif isinstance(node, SpansetFilter | Aggregate | GroupBy):
            visit(node.expression)
        elif isinstance(node, Select):
            for member in node.fields:
                visit(member)
        elif isinstance(node, Pipeline):
            for stage in node.stages:
                visit(stage)

    visit(pipeline)
    return list(found)
