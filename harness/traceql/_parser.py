"""Parse TraceQL text into the :mod:`hoptrace.harness.traceql._ast` tree, with errors that say where."""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from typing import Any

import lark

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness._model import SpanKind, StatusCode
from hoptrace.harness.traceql._ast import (
    Aggregate,
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
    SpansetFilter,
    SpansetOperation,
    Static,
    StaticValue,
)

MAX_QUERY_LENGTH = 10_000
"""Longer queries are refused before parsing, to bound the parser's time and recursion."""

# Both spellings of each intrinsic map to one canonical name.
INTRINSICS = {
    "name": "name",
    "span:name": "name",
    "status": "status",
    "span:status": "status",
    "kind": "kind",
    "span:kind": "kind",
    "duration": "duration",
    "span:duration": "duration",
    "statusMessage": "statusMessage",
    "span:statusMessage": "statusMessage",
    "span:id": "spanID",
    "span:parentID": "parentID",
    "rootName": "rootName",
    "trace:rootName": "rootName",
    "rootServiceName": "rootServiceName",
    "trace:rootService": "rootServiceName",
    "trace:rootServiceName": "rootServiceName",
    "traceDuration": "traceDuration",
    "trace:duration": "traceDuration",
    "trace:id": "traceID",
}
_KEYWORDS: dict[str, StaticValue] = {
    "true": True,
    "false": False,
    "nil": Nil.NIL,
    **{status.value: status for status in StatusCode},
    **{kind.value: kind for kind in SpanKind},
}
AGGREGATES = ("count", "avg", "min", "max", "sum")
_UNIT_NANOS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000}
_UNIT_NANOS["h"] = 60 * _UNIT_NANOS["m"]
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


@functools.cache
def _parser() -> lark.Lark:
    grammar = files("hoptrace.harness.traceql").joinpath("_grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", maybe_placeholders=True, propagate_positions=False)


@functools.lru_cache(maxsize=512)
def parse_traceql(query: str) -> Pipeline:
    """Parse a TraceQL query. Thread safe; results are cached.

    Raises ``hoptrace.harness.InvalidExpression`` naming the line and column of the first problem.
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidExpression(f"TraceQL query is {len(query)} characters; the limit is {MAX_QUERY_LENGTH}")
    try:
        tree = _parser().parse(query)
    except lark.exceptions.UnexpectedInput as exc:
        raise InvalidExpression(_describe(query, exc)) from None
    except RecursionError:
        raise InvalidExpression("TraceQL query is nested too deeply") from None
    try:
        pipeline: Pipeline = _ToAst(query).transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, InvalidExpression):
            raise exc.orig_exc from None
        raise
    except RecursionError:
        raise InvalidExpression("TraceQL query is nested too deeply") from None
    return pipeline


def _describe(query: str, exc: lark.exceptions.UnexpectedInput) -> str:
    line, column = getattr(exc, "line", 0), getattr(exc, "column", 0)
    token = getattr(exc, "token", None)
    if isinstance(exc, lark.exceptions.UnexpectedEOF) or getattr(token, "type", None) == "$END":
        what = "the query ends too early"
    elif isinstance(exc, lark.exceptions.UnexpectedCharacters):
        what = f"unexpected character {exc.char!r}"
    else:
        what = f"unexpected {str(token)!r}"
    expected = sorted({_terminal_text(name) for name in getattr(exc, "expected", None) or ()})
    hint = f"; expected {' or '.join(expected)}" if expected else ""
    where = f"line {line}, column {column}" if line > 0 else "the end"
    try:
        context = exc.get_context(query).rstrip("\n")
    except (IndexError, ValueError):
        context = query
    return f"invalid TraceQL at {where}: {what}{hint}\n{context}"


def _terminal_text(name: str) -> str:
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if isinstance(pattern, lark.lexer.PatternStr):
        return repr(pattern.value)
    return name.lower()


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    return re.sub(
        r"\\(.)", lambda match: {"n": "\n", "t": "\t"}.get(match.group(1), match.group(1)), text[1:-1]
    )


def _duration(text: str) -> Duration:
    sign = -1 if text.startswith("-") else 1
    nanos = sum(float(value) * _UNIT_NANOS[unit] for value, unit in _DURATION_PART.findall(text))
    return Duration(sign * nanos)


class _ToAst(lark.Transformer[lark.Token, Pipeline]):
    def __init__(self, query: str) -> None:
        super().__init__()
        self._query = query

    def start(self, items: list[Any]) -> Pipeline:
        pipeline: Pipeline = items[0]
        return pipeline

    def pipeline(self, items: list[Any]) -> Pipeline:
        return Pipeline(tuple(items), self._query)

    def scalar_filter(self, items: list[Any]) -> ScalarFilter:
        aggregate, op, value = items
        if op in ("=~", "!~"):
            raise InvalidExpression(f"{op} cannot compare {aggregate.function}() with a number")
        if isinstance(value, lark.Token):
            return ScalarFilter(aggregate, op, _duration(value))
        return ScalarFilter(aggregate, op, value.value)

    def aggregate(self, items: list[Any]) -> Aggregate:
        name, expression = items
        if name not in AGGREGATES:
            raise InvalidExpression(
                f"unknown pipeline function {str(name)!r} at column {name.column}; "
                f"use {', '.join(AGGREGATES)}"
            )
        if (name == "count") != (expression is None):
            raise InvalidExpression(f"{name}() takes {'no argument' if name == 'count' else 'one argument'}")
        return Aggregate(str(name), expression)

    def spanset_operation(self, items: list[Any]) -> SpansetOperation:
        left, op, right = items
        return SpansetOperation(op, left, right)

    def spanset_filter(self, items: list[Any]) -> SpansetFilter:
        return SpansetFilter(items[0])

    def logical(self, items: list[Any]) -> Logical:
        left, op, right = items
        return Logical(op, left, right)

    def compare(self, items: list[Any]) -> Comparison:
        left, op, right = items
        if op not in ("=~", "!~"):
            return Comparison(op, left, right)
        if not (isinstance(right, Static) and isinstance(right.value, str)):
            raise InvalidExpression(f"the right side of {op} must be a quoted regular expression")
        try:
            pattern = re.compile(right.value)
        except re.error as exc:
            raise InvalidExpression(f"invalid regular expression {right.value!r}: {exc}") from None
        return Comparison(op, left, right, pattern)

    def negation(self, items: list[Any]) -> Negation:
        return Negation(items[0])

    def logic_op(self, items: list[lark.Token]) -> str:
        return str(items[0])

    struct_op = cmp_op = logic_op

    def string(self, items: list[lark.Token]) -> Static:
        return Static(_unquote(items[0]))

    def integer(self, items: list[lark.Token]) -> Static:
        return Static(int(items[0]))

    def float(self, items: list[lark.Token]) -> Static:
        return Static(float(items[0]))

    def duration(self, items: list[lark.Token]) -> Static:
        return Static(_duration(items[0]))

    def word(self, items: list[lark.Token]) -> FieldExpression:
        word = str(items[0])
        if word in INTRINSICS:
            return Intrinsic(INTRINSICS[word])
        if word in _KEYWORDS:
            return Static(_KEYWORDS[word])
        raise InvalidExpression(
            f"unknown identifier {word!r} at column {items[0].column}; attributes start with '.', 'span.' "
            f"or 'resource.', strings are quoted"
        )

    def intrinsic(self, items: list[lark.Token]) -> Intrinsic:
        name = str(items[0])
        if name not in INTRINSICS:
            known = ", ".join(sorted(n for n in INTRINSICS if ":" in n))
            raise InvalidExpression(f"unknown intrinsic {name!r} at column {items[0].column}; known: {known}")
        return Intrinsic(INTRINSICS[name])

    def attribute(self, items: list[lark.Token]) -> Attribute:
        scope, _, name = str(items[0]).partition(".")
        if name.startswith('"'):
            name = _unquote(name)
        return Attribute(scope, name)
