"""The public TraceQL functions: parse, then evaluate over model spans."""

from __future__ import annotations

from collections.abc import Iterable

from hoptrace.harness._model import Span
from hoptrace.harness.traceql._ast import Pipeline
from hoptrace.harness.traceql._evaluate import evaluate_pipeline
from hoptrace.harness.traceql._parser import parse_traceql
from hoptrace.harness.traceql._trace_view import TraceView

TraceQLQuery = Pipeline
"""A parsed query, as :func:`parse_traceql` returns it (immutable, safe to share between threads)."""


def filter_spans(query: str | TraceQLQuery, spans: Iterable[Span]) -> list[Span]:
    """The spans that ``query`` selects, evaluated trace by trace (spans are grouped by ``trace_id``).

    This is what Tempo puts in a search result's spanset: e.g. ``{ kind = server } >> { status = error }``
    returns the failing spans below a server span. Spans come back in input order; ``[]`` when no trace
    matches. Raises ``hoptrace.harness.InvalidExpression`` (saying where) for a bad query. Pure and thread
    safe.
    """
    pipeline = parse_traceql(query) if isinstance(query, str) else query
    traces: dict[str, list[Span]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    selected: set[tuple[str, str]] = set()
    for trace_spans in traces.values():
        selected.update(
            (span.trace_id, span.span_id) for span in evaluate_pipeline(pipeline, TraceView(trace_spans))
        )
    return [
        span
        for trace_spans in traces.values()
        for span in trace_spans
        if (span.trace_id, span.span_id) in selected
    ]


def matches(query: str | TraceQLQuery, spans: Iterable[Span]) -> bool:
    """Whether any trace among ``spans`` satisfies ``query``; see :func:`filter_spans`."""
    return bool(filter_spans(query, spans))
