"""Turn lark's parse tree into the TraceQL AST, validating it as Tempo does.

The grammar accepts some shapes only to tell them apart here (scalar filters, metrics arithmetic and
metrics filters share one arithmetic grammar); every rejection names the line and column.
"""

from __future__ import annotations

import math
import re
from typing import Any

import lark

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness.traceql._ast import (
    ATTRIBUTE_SCOPES,
    Aggregate,
    Attribute,
    BinaryOperation,
    Coalesce,
    Duration,
    Field,
    FieldExpression,
    GroupBy,
    Intrinsic,
    MetricsExpression,
    MetricsMath,
    MetricsQuery,
    MetricsRoot,
    Nil,
    Pipeline,
    ScalarExpression,
    ScalarFilter,
    ScalarOperation,
    Select,
    SpansetFilter,
    SpansetOperation,
    Stage,
    Static,
    StaticValue,
    UnaryOperation,
)
from hoptrace.harness.traceql._fields import (
    INTRINSICS,
    KEYWORDS,
    NUMERIC,
    id_literal,
    implied_type,
    matching_operands,
    operator_accepts,
    references_span,
)
from hoptrace.harness.traceql._regex import compile_regex

_UNIT_NANOS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000}
_UNIT_NANOS["h"] = 60 * _UNIT_NANOS["m"]
_UNIT_NANOS["d"] = 24 * _UNIT_NANOS["h"]
_UNIT_NANOS["w"] = 7 * _UNIT_NANOS["d"]
_UNIT_NANOS["y"] = 365 * _UNIT_NANOS["d"]
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_STRUCTURAL = {">", "<", "!~", ">>", "<<", "~", "!>>", "!<<", "!>", "!<", "&>>", "&<<", "&>", "&<", "&~"}
_INT_LIMIT = 2**63
_METRICS_WITH_ATTRIBUTE = {
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
}


class _MetricsFilter:
    """A scalar filter whose left side is a metrics query: only valid as a whole query."""

    def __init__(self, expression: MetricsExpression, op: str, value: float) -> None:
        self.expression, self.op, self.value = expression, op, value


def _fail(meta: Any, message: str) -> InvalidExpression:
    line, column = getattr(meta, "line", None), getattr(meta, "column", None)
    where = f"line {line}, column {column}" if line is not None else "the end"
    return InvalidExpression(f"invalid TraceQL at {where}: {message}")


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r"}
    return re.sub(r"\\(.)", lambda match: escapes.get(match.group(1), match.group(1)), text[1:-1])


def _attribute_name(text: str) -> str:
    """``foo."bar baz".qux`` -> ``foo.bar baz.qux``: quoted parts unescaped, the rest kept as written."""
    parts = re.findall(r'"(?:\\.|[^"\\])*"|[^"]+', text)
    return "".join(_unquote(part) if part.startswith('"') else part for part in parts)


def _duration(text: str) -> Duration:
    return Duration(sum(float(value) * _UNIT_NANOS[unit] for value, unit in _DURATION_PART.findall(text)))


def _contains_metrics(node: object) -> bool:
    if isinstance(node, MetricsRoot | MetricsQuery | MetricsMath):
        return True
    if isinstance(node, ScalarOperation):
        return _contains_metrics(node.left) or _contains_metrics(node.right)
    return False


def _contains_aggregate(node: object) -> bool:
    if isinstance(node, Aggregate):
        return True
    if isinstance(node, ScalarOperation):
        return _contains_aggregate(node.left) or _contains_aggregate(node.right)
    return False


def _fold(op: str, left: StaticValue, right: StaticValue, meta: Any) -> Static:
    """Constant arithmetic, as Tempo folds it at parse time (``1/2`` is 0, ``1.0/2`` is 0.5)."""
    if not all(isinstance(v, int | float | Duration) and not isinstance(v, bool) for v in (left, right)):
        raise _fail(meta, f"{op} needs numbers")
    is_duration = isinstance(left, Duration) or isinstance(right, Duration)
    a = left.nanos if isinstance(left, Duration) else left
    b = right.nanos if isinstance(right, Duration) else right
    assert isinstance(a, int | float) and isinstance(b, int | float)
    if op in "/%" and b == 0:
        raise _fail(meta, "division by zero")
    if op == "+":
        value: float = a + b
    elif op == "-":
        value = a - b
    elif op == "*":
        value = a * b
    elif op == "/":
        value = int(a / b) if isinstance(a, int) and isinstance(b, int) else a / b
    elif op == "%":
        value = math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else int(math.fmod(a, b))
    else:
        value = float(a) ** float(b)
    return Static(Duration(value) if is_duration else value)


@lark.v_args(meta=True)
class ToAst(lark.Transformer[lark.Token, Any]):
    """Builds :class:`Pipeline` or :class:`MetricsRoot` from the parse tree of ``query``."""

    def __init__(self, query: str) -> None:
        super().__init__()
        self._query = query

    # ---- the whole query
    def start(self, meta: Any, items: list[Any]) -> Pipeline | MetricsRoot:
        query, hints = items
        hint_pairs = tuple(hints or ())
        if isinstance(query, Pipeline):
            return Pipeline(query.stages, self._query, hint_pairs)
        if isinstance(query, _MetricsFilter):
            return MetricsRoot(query.expression, ((query.op, query.value),), self._query, hint_pairs)
        assert isinstance(query, MetricsRoot)
        return MetricsRoot(query.expression, query.second_stages, self._query, hint_pairs)

    def arith_root(self, meta: Any, items: list[Any]) -> MetricsRoot:
        expression, *tail = items
        if not _contains_metrics(expression):
            raise _fail(meta, "a scalar expression must be compared with something, e.g. 'count() > 2'")
        return MetricsRoot(self._metrics_math(expression, meta), tuple(tail[0] if tail else ()))

    def filtered_math_root(self, meta: Any, items: list[Any]) -> MetricsRoot:
        """``(metrics arithmetic) > 10 | topk(3)``: a metrics filter, then more second stages."""
        pipeline, tail = items
        if not isinstance(pipeline, _MetricsFilter):
            raise _fail(meta, "topk() and bottomk() follow a metrics query, e.g. '{ } | rate() | topk(3)'")
        return MetricsRoot(pipeline.expression, ((pipeline.op, pipeline.value), *tail))

    def metrics_tail(self, meta: Any, items: list[Any]) -> list[tuple[str, float]]:
        return list(items)

    def hints(self, meta: Any, items: list[Any]) -> list[tuple[str, StaticValue]]:
        return list(items)

    def hint(self, meta: Any, items: list[Any]) -> tuple[str, StaticValue]:
        name, value = items
        return str(name), value.value if isinstance(value, Static) else value

    # ---- pipelines
    def pipeline(self, meta: Any, items: list[Any]) -> Pipeline | _MetricsFilter:
        if len(items) == 1 and isinstance(items[0], _MetricsFilter):
            return items[0]
        stages: list[Stage] = []
        for item in items:
            if isinstance(item, _MetricsFilter):
                raise _fail(meta, "a metrics query cannot be a stage of a spanset pipeline")
            if isinstance(item, Pipeline) and not isinstance(item, SpansetFilter) and item is items[0]:
                stages.extend(item.stages)  # the left-recursive rule nests earlier stages
            else:
                stages.append(item)
        if isinstance(stages[0], Coalesce):
            raise _fail(meta, "a pipeline cannot start with coalesce()")
        return Pipeline(tuple(stages), self._query)

    def spanset_filter(self, meta: Any, items: list[Any]) -> SpansetFilter:
        (expression,) = items
        if expression is not None:
            kind = implied_type(expression)
            if kind not in ("attribute", "bool"):
                raise _fail(meta, f"a spanset filter must be a condition (true or false), not a {kind}")
        return SpansetFilter(expression)

    def spanset_operation(self, meta: Any, items: list[Any]) -> SpansetOperation:
        left, op, right = items
        for side in (left, right):
            if isinstance(side, _MetricsFilter) or (
                isinstance(side, Pipeline) and any(isinstance(s, _MetricsFilter) for s in side.stages)
            ):
                raise _fail(meta, f"{op} combines spansets, not metrics")
        if op not in _STRUCTURAL and op not in ("&&", "||"):
            raise _fail(meta, f"{op!r} cannot combine spansets; use && || > >> < << ~ or their ! & forms")
        return SpansetOperation(op, left, right)

    def scalar_filter(self, meta: Any, items: list[Any]) -> ScalarFilter | _MetricsFilter:
        left, op, right = items
        if op in ("=~", "!~"):
            raise _fail(meta, f"{op} compares strings, not numbers")
        if _contains_metrics(left):
            return _MetricsFilter(self._metrics_math(left, meta), op, self._metrics_number(right, meta))
        if _contains_metrics(right):
            raise _fail(meta, "put the metrics query on the left of a comparison")
        if not (_contains_aggregate(left) or _contains_aggregate(right)):
            raise _fail(meta, "a scalar filter needs an aggregate such as count() or avg(duration)")
        left_type, right_type = implied_type(left), implied_type(right)
        if not matching_operands(left_type, right_type):
            raise _fail(meta, f"cannot compare a {left_type} with a {right_type}")
        return ScalarFilter(op, left, right)

    def group_by(self, meta: Any, items: list[Any]) -> GroupBy:
        (expression,) = items
        if not references_span(expression):
            raise _fail(meta, "by() needs a field of the span, e.g. by(resource.service.name)")
        return GroupBy(expression)

    def coalesce(self, meta: Any, items: list[Any]) -> Coalesce:
        return Coalesce()

    def select(self, meta: Any, items: list[Any]) -> Select:
        return Select(tuple(self._field(item, meta) for item in items))

    # ---- aggregates and arithmetic
    def aggregate(self, meta: Any, items: list[Any]) -> Aggregate:
        name, expression = str(items[0]), items[1]
        if (name == "count") != (expression is None):
            raise _fail(meta, f"{name}() takes {'no argument' if name == 'count' else 'one argument'}")
        if expression is not None:
            kind = implied_type(expression)
            if kind != "attribute" and kind not in NUMERIC:
                raise _fail(meta, f"{name}() needs a number, not a {kind}")
            if not references_span(expression):
                raise _fail(meta, f"{name}() needs a field of the span, e.g. {name}(duration)")
        return Aggregate(name, expression)

    def arith_operation(self, meta: Any, items: list[Any]) -> ScalarExpression:
        left, op, right = items
        durations = isinstance(left, Static) and isinstance(left.value, Duration)
        durations = durations or (isinstance(right, Static) and isinstance(right.value, Duration))
        if isinstance(left, Static) and isinstance(right, Static) and not durations:
            return _fold(op, left.value, right.value, meta)
        return ScalarOperation(op, left, right)  # durations stay unfolded: metrics take plain numbers

    def arith_negation(self, meta: Any, items: list[Any]) -> ScalarExpression:
        (operand,) = items
        if isinstance(operand, Static):
            return _fold("-", 0, operand.value, meta)
        return ScalarOperation("*", Static(-1), operand)

    # ---- metrics
    def metrics(self, meta: Any, items: list[Any]) -> MetricsRoot:
        pipeline, function, *stages = items
        if isinstance(pipeline, _MetricsFilter):
            raise _fail(meta, "a metrics query cannot feed another metrics function")
        query: MetricsQuery = function
        query = MetricsQuery(
            pipeline, query.function, query.attribute, query.by, query.quantiles, query.compare, tuple(stages)
        )
        if query.compare is not None and stages:
            raise _fail(meta, "compare() cannot be followed by topk, bottomk or a filter")
        return MetricsRoot(query)

    def metrics_function(self, meta: Any, items: list[Any]) -> MetricsQuery:
        name, arguments, by = str(items[0]), items[1] or [], items[2] or ()
        by_fields = tuple(self._field(item, meta) for item in by)
        empty = Pipeline((SpansetFilter(None),))
        if name in ("rate", "count_over_time"):
            if arguments:
                raise _fail(meta, f"{name}() takes no argument")
            return MetricsQuery(empty, name, by=by_fields)
        if name == "compare":
            return MetricsQuery(empty, name, by=by_fields, compare=self._compare_arguments(arguments, meta))
        if not arguments:
            raise _fail(meta, f"{name}() needs a field, e.g. {name}(duration)")
        attribute = self._field(arguments[0], meta)
        quantiles = tuple(self._metrics_number(argument, meta) for argument in arguments[1:])
        if name == "quantile_over_time":
            if not quantiles:
                raise _fail(meta, "quantile_over_time() needs quantiles, e.g. (duration, .5, .9, .99)")
            if any(not 0 <= q <= 1 for q in quantiles):
                raise _fail(meta, "quantiles are between 0 and 1")
        elif quantiles:
            raise _fail(meta, f"{name}() takes one field")
        return MetricsQuery(empty, name, attribute, by_fields, quantiles)

    def _compare_arguments(self, arguments: list[Any], meta: Any) -> tuple[SpansetFilter, int, int, int]:
        if not arguments or not isinstance(arguments[0], SpansetFilter) or len(arguments) not in (1, 2, 4):
            raise _fail(meta, "compare() takes a spanset filter, then optionally topN, or topN, start, end")
        # Integers as written: unix nanoseconds do not survive a trip through a float.
        numbers = [
            argument.value
            if isinstance(argument, Static) and type(argument.value) is int
            else self._metrics_number(argument, meta)
            for argument in arguments[1:]
        ]
        if any(number != int(number) for number in numbers):
            raise _fail(meta, "compare()'s topN, start and end are integers")
        top, start, end = [int(n) for n in numbers] + [10, 0, 0][len(numbers) :]
        return arguments[0], top, start, end

    def metrics_arguments(self, meta: Any, items: list[Any]) -> list[Any]:
        return list(items)

    def by_clause(self, meta: Any, items: list[Any]) -> list[Any]:
        return list(items)

    def negative_number(self, meta: Any, items: list[Any]) -> Static:
        return _fold("-", 0, items[0].value, meta)

    def metrics_filter(self, meta: Any, items: list[Any]) -> tuple[str, float]:
        op, value = items
        if op in ("=~", "!~"):
            raise _fail(meta, f"{op} compares strings, not numbers")
        return op, self._metrics_number(value, meta)

    def second_stage(self, meta: Any, items: list[Any]) -> tuple[str, float]:
        name, count = str(items[0]), int(items[1])
        if count < 1:
            raise _fail(meta, f"{name}() needs a count of at least 1")
        return name, float(count)

    def _metrics_math(self, node: Any, meta: Any) -> MetricsExpression:
        if isinstance(node, MetricsRoot):
            if node.second_stages:
                raise _fail(meta, "wrap a filtered metrics query in parentheses before combining it")
            return node.expression
        if isinstance(node, Static):
            if isinstance(node.value, Duration):
                raise _fail(meta, "metrics arithmetic takes plain numbers, not durations")
            return self._metrics_number(node, meta)
        if isinstance(node, ScalarOperation) and node.op in ("+", "-", "*", "/"):
            left, right = self._metrics_math(node.left, meta), self._metrics_math(node.right, meta)
            for side in (left, right):
                if isinstance(side, MetricsQuery) and side.function == "compare":
                    raise _fail(meta, "compare() cannot be combined with arithmetic")
            return MetricsMath(node.op, left, right)
        if isinstance(node, ScalarOperation):
            raise _fail(meta, f"metrics queries combine with + - * /, not {node.op}")
        raise _fail(meta, "metrics arithmetic takes metrics queries and numbers, not aggregates")

    def _metrics_number(self, node: Any, meta: Any) -> float:
        if isinstance(node, Attribute) and node.scope == "" and node.name.isdigit():
            return float("0." + node.name)  # ".9" lexes like an attribute name
        if isinstance(node, Static) and isinstance(node.value, Duration):
            return node.value.nanos / 1e9
        value = node.value if isinstance(node, Static) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _fail(meta, "expected a number")

    def _field(self, node: Any, meta: Any) -> Field:
        if isinstance(node, Attribute | Intrinsic):
            return node
        raise _fail(meta, "expected an attribute or an intrinsic such as duration or span:name")

    # ---- field expressions
    def binary(self, meta: Any, items: list[Any]) -> FieldExpression:
        left, op, right = items
        if op in ("=", "!=") and (Static(Nil.NIL) in (left, right)):
            return self._nil_comparison(op, left, right, meta)
        left_type, right_type = implied_type(left), implied_type(right)
        if not matching_operands(left_type, right_type):
            raise _fail(meta, f"{op} cannot combine a {left_type} with a {right_type}")
        if not (operator_accepts(op, left_type) and operator_accepts(op, right_type)):
            kinds = left_type if left_type == right_type else f"{left_type} and {right_type}"
            raise _fail(meta, f"{op} does not apply to {kinds}")
        if op in ("=", "!="):
            return BinaryOperation(op, id_literal(right, left), id_literal(left, right))
        if op not in ("=~", "!~"):
            return BinaryOperation(op, left, right)
        if not (isinstance(right, Static) and isinstance(right.value, str)):
            raise _fail(meta, f"the right side of {op} must be a quoted regular expression")
        try:
            pattern = compile_regex(right.value)
        except InvalidExpression as exc:
            raise _fail(meta, str(exc)) from None
        return BinaryOperation(op, left, right, pattern)

    def _nil_comparison(self, op: str, left: Any, right: Any, meta: Any) -> FieldExpression:
        operand = right if left == Static(Nil.NIL) else left
        if operand == Static(Nil.NIL):
            return Static(False)
        if op == "=" and isinstance(operand, Intrinsic):
            raise _fail(meta, "intrinsics cannot be nil")
        if op == "=" and operand == Attribute("resource", "service.name"):
            raise _fail(meta, "resource.service.name cannot be nil")
        return UnaryOperation("exists" if op == "!=" else "missing", operand)

    def not_(self, meta: Any, items: list[Any]) -> FieldExpression:
        (operand,) = items
        if implied_type(operand) not in ("attribute", "bool"):
            raise _fail(meta, f"! needs a condition, not a {implied_type(operand)}")
        return UnaryOperation("!", operand)

    def minus(self, meta: Any, items: list[Any]) -> FieldExpression:
        (operand,) = items
        if isinstance(operand, Static) and implied_type(operand) in NUMERIC:
            return _fold("-", 0, operand.value, meta)
        if implied_type(operand) not in ("attribute", *NUMERIC):
            raise _fail(meta, f"- needs a number, not a {implied_type(operand)}")
        return UnaryOperation("-", operand)

    def logic_op(self, meta: Any, items: list[lark.Token]) -> str:
        return str(items[0])

    struct_op = cmp_op = add_op = mul_op = pow_op = logic_op

    # ---- literals and fields
    def string(self, meta: Any, items: list[lark.Token]) -> Static:
        return Static(_unquote(items[0]))

    def integer(self, meta: Any, items: list[lark.Token]) -> Static:
        value = int(items[0])
        if value >= _INT_LIMIT:
            raise _fail(meta, f"integer {items[0]} is too large")
        return Static(value)

    def float(self, meta: Any, items: list[lark.Token]) -> Static:
        return Static(float(items[0]))

    def duration(self, meta: Any, items: list[lark.Token]) -> Static:
        return Static(_duration(items[0]))

    def word(self, meta: Any, items: list[lark.Token]) -> FieldExpression:
        word = str(items[0])
        if word in INTRINSICS and ":" not in word:
            return Intrinsic(INTRINSICS[word])
        if word in KEYWORDS:
            return Static(KEYWORDS[word])
        raise _fail(
            meta,
            f"unknown identifier {word!r}; attributes start with '.', 'span.', 'resource.', 'event.', "
            "'link.', 'instrumentation.' or 'parent.', strings are quoted",
        )

    def scoped_intrinsic(self, meta: Any, items: list[lark.Token]) -> Intrinsic:
        name = str(items[0])
        if name not in INTRINSICS or ":" not in name:
            known = ", ".join(sorted(n for n in INTRINSICS if ":" in n))
            raise _fail(meta, f"unknown intrinsic {name!r}; known: {known}")
        return Intrinsic(INTRINSICS[name])

    def attribute(self, meta: Any, items: list[lark.Token]) -> Attribute:
        text = str(items[0])
        parent = text.startswith("parent.")
        if parent:
            text = text[len("parent") :]
            if not text.startswith("."):  # pragma: no cover - the lexer only splits here
                raise _fail(meta, "expected parent.x")
            if text.startswith((".span.", ".resource.")):
                text = text[1:]
        scope, _, name = text.partition(".")
        if scope not in ATTRIBUTE_SCOPES:  # pragma: no cover - the lexer allows only these
            raise _fail(meta, f"unknown attribute scope {scope!r}")
        if not name:
            raise _fail(meta, "an attribute needs a name after the dot")
        return Attribute(scope, _attribute_name(name), parent)
