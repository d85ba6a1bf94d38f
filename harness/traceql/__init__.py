"""TraceQL, the subset users write every day, evaluated over ``harness.Span`` lists.

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

from harness.traceql._api import TraceQLQuery, filter_spans, matches
from harness.traceql._parser import parse_traceql

__all__ = ["TraceQLQuery", "filter_spans", "matches", "parse_traceql"]
