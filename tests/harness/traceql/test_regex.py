"""TraceQL regexes have RE2's (Go's, Tempo's) syntax and run in linear time."""

from __future__ import annotations

import pytest

from hoptrace.harness import InvalidExpression, Span, SpanKind, StatusCode
from hoptrace.harness.traceql import filter_spans


def _span(name: str) -> Span:
    return Span(
        trace_id=f"{len(name):032x}",
        span_id="2" * 16,
        parent_span_id=None,
        name=name,
        kind=SpanKind.SERVER,
        status=StatusCode.UNSET,
        status_message="",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        service_name="svc",
    )


def test_a_catastrophic_backtracking_pattern_answers_at_once() -> None:
    # Python's backtracking re needs 2^n steps here: n = 100,000 would never finish.
    spans = [_span("a" * 100_000 + "b"), _span("a" * 50)]

    assert filter_spans('{ name =~ "(a+)+$" }', spans) == [spans[1]]


def test_go_syntax_is_accepted_and_perl_only_syntax_refused() -> None:
    spans = [_span("héllo"), _span("GET /x")]

    assert filter_spans(r'{ name =~ "\\pL+\\z" }', spans) == [spans[0]]
    assert filter_spans('{ name =~ "(?i)get.*" }', spans) == [spans[1]]
    with pytest.raises(InvalidExpression, match="invalid escape sequence"):
        filter_spans(r'{ name =~ "(a)\\1" }', spans)
    with pytest.raises(InvalidExpression, match="invalid regular expression"):
        filter_spans('{ name =~ "(?<=a)b" }', spans)
