"""Parse TraceQL text into the :mod:`hoptrace.harness.traceql._ast` tree, with errors that say where.

Syntax errors and Tempo's validation errors (``{ 1 = "foo" }``, ``{ status }``) both raise
``InvalidExpression`` naming the line and column.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files

import lark

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness.traceql._ast import MetricsRoot, Pipeline
from hoptrace.harness.traceql._transform import ToAst

MAX_QUERY_LENGTH = 10_000
"""Longer queries are refused before parsing, to bound the parser's time and recursion."""


@functools.cache
def _parser() -> lark.Lark:
    grammar = files("hoptrace.harness.traceql").joinpath("_grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", maybe_placeholders=True, propagate_positions=True)


@functools.lru_cache(maxsize=512)
def parse_query(query: str) -> Pipeline | MetricsRoot:
    """Parse any TraceQL query: a spanset query (:class:`Pipeline`) or a metrics query
    (:class:`MetricsRoot`). Thread safe; results are cached.

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
        result: Pipeline | MetricsRoot = ToAst(query).transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, InvalidExpression):
            raise exc.orig_exc from None
        raise
    except RecursionError:
        raise InvalidExpression("TraceQL query is nested too deeply") from None
    return result


def parse_traceql(query: str) -> Pipeline:
    """Parse a spanset query (what ``/api/search`` runs); see :func:`parse_query`.

    Raises ``InvalidExpression`` for a bad query, and for a metrics query (which search cannot run).
    """
    result = parse_query(query)
    if isinstance(result, MetricsRoot):
        raise InvalidExpression(
            "this is a TraceQL metrics query; run it with /api/metrics/query_range or /api/metrics/query"
        )
    return result


def parse_metrics_query(query: str) -> MetricsRoot:
    """Parse a metrics query (``{...} | rate() by (...)``); see :func:`parse_query`.

    Raises ``InvalidExpression`` for a bad query, and for a spanset query without a metrics function.
    """
    result = parse_query(query)
    if isinstance(result, Pipeline):
        raise InvalidExpression(
            "a metrics query needs a metrics function, e.g. '{ } | rate()', 'count_over_time()', "
            "'quantile_over_time(duration, .9)' or 'histogram_over_time(duration)'"
        )
    return result


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
    return re.sub(r"[_]", " ", name.lower())
