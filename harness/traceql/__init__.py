"""TraceQL, the subset users write every day, evaluated over ``hoptrace.harness.Span`` lists.

Parse once with :func:`parse_traceql` (or pass the text), then:

- :func:`filter_spans` -- the spans a query selects, trace by trace (the harness's local evaluation);
- :func:`matches` -- whether a trace satisfies a query.

Supported: spanset filters ``{ ... }``; intrinsics ``name status kind duration statusMessage rootName
rootServiceName traceDuration`` and their ``span:``/``trace:`` forms (plus ``span:id``, ``span:parentID``,
``trace:id``); attributes ``span.x``, ``resource.x``, ``.x`` and quoted names (``span."a b"``); operators
``= != > >= < <= =~ !~`` (regexes fully anchored); ``&&``/``||`` (one precedence level, left to right,
as in Tempo) inside filters and between spansets; ``!``; structural ``> >> < << ~``; string, integer,
float, duration (``1h30m``, ``150ms``), ``true``/``false``, ``nil``, status and kind literals; pipeline
stages ``| {...}``, ``| count() > N`` and ``| avg|min|max|sum(expr) op value``.
"""

from __future__ import annotations

from hoptrace.harness.traceql._api import TraceQLQuery, filter_spans, matches
from hoptrace.harness.traceql._ast import Attribute, Duration, Intrinsic, Pipeline, referenced_fields
from hoptrace.harness.traceql._autocomplete import autocomplete_filter
from hoptrace.harness.traceql._evaluate import MISSING, TraceView, Value, evaluate_pipeline, field_value
from hoptrace.harness.traceql._parser import INTRINSICS, parse_traceql

# What the query engine is made of, for the embedded backend's search and tag lookups.
__all__ = [
    "INTRINSICS",
    "MISSING",
    "Attribute",
    "Duration",
    "Intrinsic",
    "Pipeline",
    "TraceQLQuery",
    "TraceView",
    "Value",
    "autocomplete_filter",
    "evaluate_pipeline",
    "field_value",
    "filter_spans",
    "matches",
    "parse_traceql",
    "referenced_fields",
]
