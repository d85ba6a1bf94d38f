"""Tempo's TraceQL beyond simple filters: arithmetic and precedence, every structural operator, the
event/link/instrumentation/parent scopes, nested-set intrinsics, pipelines with by/coalesce/select,
validation errors with their position, and metrics queries' syntax."""

from __future__ import annotations

import dataclasses

import pytest

from hoptrace.harness import InvalidExpression
from hoptrace.harness._model import SpanEvent, SpanLink
from hoptrace.harness.traceql import (
    Attribute,
    Intrinsic,
    MetricsMath,
    MetricsQuery,
    filter_spans,
    parse_metrics_query,
    parse_traceql,
)

from .test_filter_spans import MS, SPANS, T2, names

# SPANS, trace T1:  1 GET /orders (server) -> 2 GET inventory (client) -> 3 GET /stock (server) -> 4 SELECT
#                                          -> 5 publish orders (producer) -> 6 process orders (consumer)
# trace T2: 9 orphan (its parent 8 never arrived)
ALL = [span.name for span in SPANS]


def everything_but(*excluded: str) -> list[str]:
    return [name for name in ALL if name not in excluded]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ .retries * 2 > 5 }", ["process orders"]),
        ("{ -.retries = -3 }", ["process orders"]),
        ("{ .retries + 1 * 2 = 5 }", ["process orders"]),  # * binds tighter than +
        ("{ (.retries + 1) * 2 = 8 }", ["process orders"]),
        ("{ .retries ^ 2 = 9 && .retries % 2 = 1 }", ["process orders"]),
        ("{ 2 ^ 1 ^ 3 = 2 && .ratio / 2 = 0.25 }", ["process orders"]),  # ^ is right-associative
        ("{ duration > 1ms * 40 }", ["GET /orders", "process orders"]),
        ("{ duration - 45ms > 0 }", ["GET /orders", "process orders"]),
        ("{ .retries / 0 = 1 }", []),  # a division by zero matches nothing
        # && and || share one level, left to right: (server || client) && error
        ("{ kind = server || kind = client && status = error }", ["SELECT"]),
        ("{ status = error && kind = server || kind = consumer }", ["process orders"]),
        ("{ !.flag = false }", ["process orders"]),  # ! binds tighter than =
        ("{ 1 < 1h && 1s = 1000ms && 2 = 2.0 }", ALL),  # ints, floats and durations compare as numbers
        # structural operators bind tighter than && between spansets
        (
            '{ name = "GET /orders" } > { kind = client } && { status = error }',
            ["GET inventory", "SELECT"],
        ),
    ],
)
def test_arithmetic_and_precedence(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ kind = client } !> { }", everything_but("GET /stock")),
        ('{ name = "SELECT" } !< { }', everything_but("GET /stock")),
        ("{ kind = client } !>> { }", everything_but("GET /stock", "SELECT")),
        ("{ status = error } !<< { }", ["SELECT", "publish orders", "process orders", "orphan"]),
        ("{ kind = producer } !~ { }", everything_but("GET inventory")),
        ("{ kind = server } &> { kind = client }", ["GET /orders", "GET inventory", "GET /stock", "SELECT"]),
        ("{ status = error } &< { }", ["GET /stock", "SELECT"]),
        ("{ kind = server } &>> { status = error }", ["GET /orders", "GET /stock", "SELECT"]),
        ("{ kind = consumer } &<< { kind = server }", ["GET /orders", "process orders"]),
        ("{ kind = producer } &~ { }", ["GET inventory", "publish orders"]),
        ("{ kind = server } >> { kind = server }", ["GET /stock"]),
        ("{ kind = server } ~ { kind = producer }", []),
    ],
)
def test_negated_and_union_structural_operators(query: str, expected: list[str]) -> None:
    assert names(query) == expected


def test_structural_operators_on_a_deep_chain() -> None:
    chain = [
        dataclasses.replace(
            SPANS[0],
            span_id=f"{index + 1:016x}",
            parent_span_id=f"{index:016x}" if index else None,
            name=f"s{index}",
            attributes={"depth": index},
        )
        for index in range(3000)
    ]

    def chain_names(query: str) -> list[str]:
        return [span.name for span in filter_spans(query, chain)]

    assert chain_names('{ name = "s0" } >> { .depth >= 2998 }') == ["s2998", "s2999"]
    assert chain_names('{ name = "s2999" } << { .depth < 2 }') == ["s0", "s1"]
    assert chain_names('{ name = "s10" } !>> { .depth < 12 }') == [f"s{i}" for i in range(11)]
    assert chain_names("{ nestedSetLeft = 3000 && nestedSetRight = 3001 }") == ["s2999"]


EVENTFUL = [
    dataclasses.replace(
        SPANS[3],
        events=(
            SpanEvent("exception", SPANS[3].start_time_unix_nano + 2 * MS, {"exception.type": "ValueError"}),
        ),
        links=(SpanLink(T2, "0000000000000009", {"link.kind": "follows"}),),
        scope_name="my.db.lib",
        scope_version="4.2.0",
        scope_attributes={"library.team": "storage", "library.tier": 2},
    ),
    *SPANS[4:],
]


@pytest.mark.parametrize(
    "query",
    [
        '{ event:name = "exception" }',
        '{ event.exception.type = "ValueError" }',
        "{ event:timeSinceStart > 1ms && event:timeSinceStart < 3ms }",
        '{ link:traceID = "' + T2 + '" }',
        '{ link:spanID = "0000000000000009" && link.link.kind = "follows" }',
        '{ instrumentation:name = "my.db.lib" }',
        '{ instrumentation:version = "4.2.0" }',
        '{ instrumentation:version =~ "4[.].*" && instrumentation.library.team = "storage" }',
        "{ instrumentation.library.tier > 1 }",
        "{ instrumentation.library.tier != nil }",
        '{ instrumentation:name = "my.db.lib" } | select(instrumentation:version)',
    ],
)
def test_event_link_and_instrumentation_scopes(query: str) -> None:
    assert [span.name for span in filter_spans(query, EVENTFUL)] == ["SELECT"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Tempo compares ids as bytes: hex in any case, leading zeros optional.
        ('{ trace:id = "2" }', ["orphan"]),
        ('{ trace:id = "00000000000000000000000000000002" }', ["orphan"]),
        ('{ span:id = "4" && trace:id != "2" }', ["SELECT"]),
        ('{ span:id = "000000000000000A" }', []),
        ('{ span:parentID = "08" }', ["orphan"]),
        ('{ trace:id = "not hex" }', []),
    ],
)
def test_ids_compare_as_tempo_compares_them(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('{ parent.peer = "inventory" }', ["GET /stock"]),
        ('{ parent.resource.service.name = "api" && resource.service.name = "inventory" }', ["GET /stock"]),
        ("{ parent.span.retries = 3 }", []),
        ("{ nestedSetLeft = 1 }", ["GET /orders", "orphan"]),
        ("{ nestedSetParent = -1 }", ["GET /orders", "orphan"]),
        ("{ nestedSetRight = 12 }", ["GET /orders"]),
        ("{ nestedSetParent = 8 }", ["process orders"]),
        ("{ span:childCount = 2 }", ["GET /orders"]),
        ("{ span:childCount = 0 && kind = client }", ["SELECT"]),
        ('{ .tenant."id" = "acme" }', ["GET /stock"]),  # a multi-part quoted name
    ],
)
def test_parent_scope_nested_sets_and_child_count(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("avg(duration) > 30ms", [name for name in ALL if name != "orphan"]),
        ("count() = 1", ["orphan"]),
        ("max(duration) - min(duration) > 90ms", [name for name in ALL if name != "orphan"]),
        ("({ kind = server } | count() > 1) && { status = error }", ["GET /orders", "GET /stock", "SELECT"]),
        ("({ kind = server } | count() > 5) || { status = error }", ["SELECT"]),
        (
            "{ } | by(resource.service.name) | count() > 1",
            ["GET /orders", "GET inventory", "GET /stock", "SELECT", "publish orders"],
        ),
        (
            "{ } | by(resource.service.name) | count() > 2 | coalesce()",
            ["GET /orders", "GET inventory", "publish orders"],
        ),
        ("{ kind = client } | select(.peer, span:childCount)", ["GET inventory", "SELECT"]),
        ("{ } | max(1 + .retries) = 4", ALL[:6]),
    ],
)
def test_pipelines_scalar_filters_and_grouping(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "where", "what"),
    [
        ('{ 1 = "foo" }', "line 1, column 3", "cannot combine a int with a string"),
        ("{ status }", "line 1, column 1", "must be a condition"),
        ("{ .a = 1 &&\n  name = 3 }", "line 2, column 3", "cannot combine a string with a int"),
        ("{ status > ok }", "column 3", "> does not apply to status"),
        ("{ !1 = 1 }", "column 3", "! needs a condition"),
        ("{ -name = 1 }", "column 3", "- needs a number"),
        ("{ span:status = nil }", "column 3", "intrinsics cannot be nil"),
        ('{ span.foo =~ "[" }', "column 3", "invalid regular expression"),
        ("sum(3) = 2", "column 1", "needs a field of the span"),
        ("{ } | by(1)", "column 7", "by() needs a field"),
        ("{ true } = { true }", "column 1", "cannot combine spansets"),
        ("coalesce() | { true }", "column 1", "cannot start with coalesce"),
        ("2 * 3", "column 1", "must be compared"),
        ("{} | rate() | topk(0)", "column 13", "at least 1"),
        ("{ } | count() > 2 | topk(3)", "column 1", "topk() and bottomk() follow a metrics query"),
        ("({} | rate()) * 2 | topk(0)", "column 19", "at least 1"),
        ("{} | compare({status=error}) > 10", "column 1", "compare() cannot be followed"),
        ("({} | rate()) * 10s", "column 1", "not durations"),
        ("{ trace:status = error }", "column 3", "unknown intrinsic"),
        ("{ attribute = 4 }", "column 3", "unknown identifier 'attribute'"),
        ("{ .a == 4 }", "column 7", "unexpected"),
    ],
)
def test_invalid_queries_name_line_and_column(query: str, where: str, what: str) -> None:
    with pytest.raises(InvalidExpression) as caught:
        parse_metrics_query(query) if "rate" in query or "compare" in query else parse_traceql(query)
    assert where in str(caught.value)
    assert what in str(caught.value)


def test_metrics_queries_parse_into_their_parts() -> None:
    rate = parse_metrics_query("{ } | rate() by (resource.service.name)")
    quantile = parse_metrics_query("{ status = error } | quantile_over_time(duration, .9, 0.99) by (name)")
    histogram = parse_metrics_query("{} | histogram_over_time(duration) with(exemplars=5, sample=true)")
    ranked = parse_metrics_query("{} | count_over_time() by (span.http.route) > 2 | topk(3)")
    math = parse_metrics_query("({ status = error } | rate()) / ({ } | rate()) * 100 > 5")
    compare = parse_metrics_query("{ } | compare({ status = error }, 5)")
    math_ranked = parse_metrics_query("({ } | rate()) / ({ } | count_over_time()) | topk(3) > 1 | bottomk(2)")
    math_filtered_ranked = parse_metrics_query("({ } | rate()) * 2 > 10 | topk(3)")

    assert isinstance(rate.expression, MetricsQuery)
    assert (rate.expression.function, rate.expression.by) == (
        "rate",
        (Attribute("resource", "service.name"),),
    )
    assert rate.expression.pipeline.stages == parse_traceql("{ }").stages
    assert isinstance(quantile.expression, MetricsQuery)
    assert quantile.expression.quantiles == (0.9, 0.99)
    assert quantile.expression.attribute == Intrinsic("duration")
    assert quantile.expression.by == (Intrinsic("name"),)
    assert histogram.hints == (("exemplars", 5), ("sample", True))
    assert isinstance(ranked.expression, MetricsQuery)
    assert ranked.expression.second_stages == ((">", 2.0), ("topk", 3.0))
    assert isinstance(math.expression, MetricsMath) and math.second_stages == ((">", 5.0),)
    assert math.expression.op == "*" and math.expression.right == 100.0
    assert isinstance(math_ranked.expression, MetricsMath)
    assert math_ranked.second_stages == (("topk", 3.0), (">", 1.0), ("bottomk", 2.0))
    assert math_filtered_ranked.second_stages == ((">", 10.0), ("topk", 3.0))
    assert isinstance(compare.expression, MetricsQuery) and compare.expression.compare is not None
    assert compare.expression.compare[1:] == (5, 0, 0)
    with pytest.raises(InvalidExpression, match="metrics query"):
        parse_traceql("{ } | rate()")
    with pytest.raises(InvalidExpression, match="needs a metrics function"):
        parse_metrics_query("{ }")
