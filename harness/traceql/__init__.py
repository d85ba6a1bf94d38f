"""TraceQL as Tempo defines it, evaluated over ``hoptrace.harness.Span`` lists.

Parse once with :func:`parse_traceql` (or pass the text), then:

- :func:`filter_spans` -- the spans a query selects, trace by trace (the harness's local evaluation);
- :func:`matches` -- whether a trace satisfies a query.

The whole language that applies to stored spans: spanset filters with ``&& || !``, comparisons, regexes
(fully anchored) and arithmetic (``+ - * / % ^``, unary minus) at Tempo's precedence; every intrinsic
(``name status kind duration statusMessage rootName rootServiceName traceDuration nestedSetLeft
nestedSetRight nestedSetParent`` and the ``span: trace: event: link: instrumentation:`` forms, with
``span:childCount``); attributes in the ``span. resource. event. link. instrumentation. parent.`` scopes
and unscoped ``.x``, with quoted and multi-part quoted names; ``nil``; spanset operators ``&& ||`` and the
structural ``> >> < << ~``, negated ``!> !>> !< !<< !~`` and union ``&> &>> &< &<< &~`` (linear in the
trace's size); pipelines with scalar filters (``| count() > 2``, ``avg(.x) > 1`` as a first stage,
arithmetic over aggregates), ``by()``, ``coalesce()``, ``select()`` and parenthesised pipelines; metrics
queries (:func:`parse_metrics_query`: ``rate count_over_time min/max/avg/sum_over_time
quantile_over_time histogram_over_time compare``, ``by (...)``, ``topk/bottomk``, filters, arithmetic
between queries) and ``with(...)`` hints. Type errors are rejected as Tempo's validation rejects them.
"""

from __future__ import annotations

from hoptrace.harness.traceql._api import TraceQLQuery, filter_spans, matches
from hoptrace.harness.traceql._ast import (
    Attribute,
    BinaryOperation,
    Duration,
    Field,
    FieldExpression,
    Intrinsic,
    MetricsMath,
    MetricsQuery,
    MetricsRoot,
    Pipeline,
    SpansetFilter,
    SpansetOperation,
    Static,
    UnaryOperation,
    referenced_fields,
)
from hoptrace.harness.traceql._autocomplete import autocomplete_filter
from hoptrace.harness.traceql._evaluate import Spanset, evaluate_pipeline, evaluate_spansets
from hoptrace.harness.traceql._fields import INTRINSICS
from hoptrace.harness.traceql._parser import parse_metrics_query, parse_query, parse_traceql
from hoptrace.harness.traceql._trace_view import TraceView
from hoptrace.harness.traceql._values import MISSING, Value, evaluate_field, field_value

# What the query engine is made of, for the embedded backend's search, metrics and tag lookups.
__all__ = [
    "INTRINSICS",
    "MISSING",
    "Attribute",
    "BinaryOperation",
    "Duration",
    "Field",
    "FieldExpression",
    "Intrinsic",
    "MetricsMath",
    "MetricsQuery",
    "MetricsRoot",
    "Pipeline",
    "Spanset",
    "SpansetFilter",
    "SpansetOperation",
    "Static",
    "TraceQLQuery",
    "TraceView",
    "UnaryOperation",
    "Value",
    "autocomplete_filter",
    "evaluate_field",
    "evaluate_pipeline",
    "evaluate_spansets",
    "field_value",
    "filter_spans",
    "matches",
    "parse_metrics_query",
    "parse_query",
    "parse_traceql",
    "referenced_fields",
]
