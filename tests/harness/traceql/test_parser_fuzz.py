"""Random and generated TraceQL never crashes or hangs the parser or the evaluator (property tests)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hoptrace.harness import InvalidExpression
from hoptrace.harness.traceql import filter_spans, parse_traceql
from hoptrace.harness.traceql._ast import Pipeline

from .test_filter_spans import SPANS

TOKENS = [
    "{",
    "}",
    "(",
    ")",
    ".a",
    ".tags",
    "span.retries",
    "resource.service.name",
    "name",
    "status",
    "kind",
    "duration",
    "traceDuration",
    "rootServiceName",
    "span:name",
    "trace:duration",
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    ">>",
    "<<",
    "~",
    "=~",
    "!~",
    "&&",
    "||",
    "|",
    "!",
    '"GET.*"',
    '"x"',
    "1",
    "-2",
    "1.5",
    "10ms",
    "1h30m",
    "nil",
    "true",
    "error",
    "server",
    "count()",
    "avg(duration)",
    "max(.retries)",
    'span."x y"',
    " ",
]

ATTRIBUTES = st.sampled_from([".retries", "span.tags", "resource.tier", ".x"])
VALUES = st.sampled_from(['"GET /orders"', "3", "0.5", "20ms", "nil", "error", "server", "true", '"a"'])
OPERATORS = st.sampled_from(["=", "!=", ">", ">=", "<", "<="])
# Intrinsics have types: each is compared only with values Tempo's validation accepts for it.
TYPED_INTRINSICS = st.sampled_from(
    [
        ("name", '"GET /orders"'),
        ("rootName", '"a"'),
        ("duration", "20ms"),
        ("duration", "3"),
        ("traceDuration", "0.5"),
        ("span:childCount", "1"),
        ("nestedSetLeft", "2"),
    ]
)


def _accepts_or_explains(query: str) -> Pipeline | None:
    try:
        return parse_traceql(query)
    except InvalidExpression as exc:
        assert str(exc)
        return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_random_text_parses_or_raises_invalid_expression(query: str) -> None:
    _accepts_or_explains(query)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_token_soup_parses_or_raises_and_evaluates(tokens: list[str]) -> None:
    pipeline = _accepts_or_explains(" ".join(tokens))
    if pipeline is not None:
        result = filter_spans(pipeline, SPANS)
        assert all(span in SPANS for span in result)


conditions = (
    st.builds(lambda f, o, v: f"{f} {o} {v}", ATTRIBUTES, st.sampled_from(["=", "!="]), VALUES)
    | st.builds(lambda fv, o: f"{fv[0]} {o} {fv[1]}", TYPED_INTRINSICS, OPERATORS)
    | st.builds(lambda s, o: f"status {o} {s}", st.sampled_from(["error", "ok", "unset"]), st.just("!="))
    | st.builds(lambda f, o: f'{f} {o} "G.*"', ATTRIBUTES | st.just("name"), st.sampled_from(["=~", "!~"]))
    | st.builds(lambda f, o: f"{f} * 2 {o} 3 + 1", st.just(".retries"), OPERATORS)
)
field_expressions = st.recursive(
    conditions,
    lambda inner: (
        st.builds(lambda a, op, b: f"({a}) {op} {b}", inner, st.sampled_from(["&&", "||"]), inner)
        | st.builds(lambda a: f"!({a})", inner)
    ),
    max_leaves=6,
)
spansets = st.recursive(
    st.builds(lambda e: "{ " + e + " }", field_expressions) | st.just("{ }"),
    lambda inner: st.builds(
        lambda a, op, b: f"({a}) {op} ({b})",
        inner,
        st.sampled_from(
            [
                "&&",
                "||",
                ">",
                ">>",
                "<",
                "<<",
                "~",
                "!>",
                "!>>",
                "!<",
                "!<<",
                "!~",
                "&>",
                "&>>",
                "&<",
                "&<<",
                "&~",
            ]
        ),
        inner,
    ),
    max_leaves=4,
)
pipelines = st.builds(
    lambda s, stages: " | ".join([s, *stages]),
    spansets,
    st.lists(
        st.sampled_from(
            [
                "count() > 1",
                "avg(duration) < 1s",
                "max(.retries) >= 3",
                "{ kind = server }",
                "by(resource.service.name)",
                "coalesce()",
                "select(.retries, span:childCount)",
                "max(.retries) - min(.retries) > 1",
            ]
        ),
        max_size=2,
    ),
)


@settings(max_examples=300, deadline=None)
@given(pipelines)
def test_generated_valid_queries_parse_and_evaluate(query: str) -> None:
    pipeline = parse_traceql(query)
    result = filter_spans(pipeline, SPANS)
    assert len({(s.trace_id, s.span_id) for s in result}) == len(result)


def test_deep_nesting_is_refused_or_parsed_without_crashing() -> None:
    for query in (
        "(" * 3000 + "{}" + ")" * 3000,
        "{ " + "!" * 4000 + "true }",
        "{ " + "(" * 4000 + ".a = 1" + ")" * 4000 + " }",
    ):
        pipeline = _accepts_or_explains(query)
        if pipeline is not None:
            filter_spans(pipeline, SPANS)
    assert _accepts_or_explains("{}" * 6000) is None
