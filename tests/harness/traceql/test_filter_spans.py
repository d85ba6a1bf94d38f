"""TraceQL evaluation over model spans: every feature of the supported subset, with Tempo's semantics."""

from __future__ import annotations

import pytest

from hoptrace.harness import InvalidExpression, Span
from hoptrace.harness._model import AttributeValue, SpanKind, StatusCode
from hoptrace.harness.traceql import filter_spans, matches, parse_traceql

MS = 1_000_000
T1 = "0" * 31 + "1"
T2 = "0" * 31 + "2"


def _span(
    trace_id: str,
    span_id: int,
    parent: int | None,
    service: str,
    name: str,
    kind: SpanKind,
    start_ms: int,
    duration_ms: int,
    attributes: dict[str, AttributeValue] | None = None,
    status: StatusCode = StatusCode.UNSET,
    message: str = "",
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=f"{span_id:016x}",
        parent_span_id=None if parent is None else f"{parent:016x}",
        name=name,
        kind=kind,
        status=status,
        status_message=message,
        start_time_unix_nano=start_ms * MS,
        end_time_unix_nano=(start_ms + duration_ms) * MS,
        service_name=service,
        attributes=attributes or {},
        resource_attributes={"service.name": service, "deployment": "prod", "shared": "from-resource"},
    )


SPANS = [
    _span(
        T1, 1, None, "api", "GET /orders", SpanKind.SERVER, 0, 100, {"http.status_code": 200, "shared": "x"}
    ),
    _span(T1, 2, 1, "api", "GET inventory", SpanKind.CLIENT, 10, 30, {"peer": "inventory"}),
    _span(
        T1,
        3,
        2,
        "inventory",
        "GET /stock",
        SpanKind.SERVER,
        12,
        20,
        {"tenant.id": "acme", "tags": ("a", "b")},
    ),
    _span(T1, 4, 3, "inventory", "SELECT", SpanKind.CLIENT, 14, 5, {}, StatusCode.ERROR, "deadlock"),
    _span(T1, 5, 1, "api", "publish orders", SpanKind.PRODUCER, 50, 2, {"attr with space": "yes"}),
    _span(
        T1,
        6,
        5,
        "worker",
        "process orders",
        SpanKind.CONSUMER,
        60,
        50,
        {"retries": 3, "ratio": 0.5, "flag": True},
    ),
    _span(T2, 9, 8, "worker", "orphan", SpanKind.INTERNAL, 0, 1, {}, StatusCode.OK),
]


def names(query: str) -> list[str]:
    return [span.name for span in filter_spans(query, SPANS)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{}", [s.name for s in SPANS]),
        ('{ name = "SELECT" }', ["SELECT"]),
        ('{ span:name = "SELECT" }', ["SELECT"]),
        ("{ status = error }", ["SELECT"]),
        ("{ span:status = ok }", ["orphan"]),
        ("{ status != unset }", ["SELECT", "orphan"]),
        ("{ kind = server }", ["GET /orders", "GET /stock"]),
        ("{ span:kind = consumer }", ["process orders"]),
        ("{ duration > 40ms }", ["GET /orders", "process orders"]),
        ("{ span:duration <= 2ms }", ["publish orders", "orphan"]),
        ("{ duration >= 0.1s }", ["GET /orders"]),
        ('{ statusMessage = "deadlock" }', ["SELECT"]),
        ('{ span:statusMessage =~ "dead.*" }', ["SELECT"]),
        ('{ rootName = "GET /orders" && kind = client }', ["GET inventory", "SELECT"]),
        ('{ trace:rootName = "GET /orders" && name = "SELECT" }', ["SELECT"]),
        ('{ rootServiceName = "api" && span.retries = 3 }', ["process orders"]),
        ('{ trace:rootService = "worker" }', []),
        ("{ traceDuration > 100ms && kind = producer }", ["publish orders"]),
        ("{ trace:duration < 2ms }", ["orphan"]),
        ('{ span:id = "0000000000000004" }', ["SELECT"]),
        ('{ trace:id = "' + T2 + '" }', ["orphan"]),
    ],
)
def test_intrinsics(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ span.http.status_code = 200 }", ["GET /orders"]),
        ("{ .http.status_code >= 200 }", ["GET /orders"]),
        ('{ resource.service.name = "inventory" }', ["GET /stock", "SELECT"]),
        ('{ .service.name = "worker" }', ["process orders", "orphan"]),
        ('{ span.service.name = "worker" }', []),
        # An unscoped attribute prefers the span's value over the resource's.
        ('{ .shared = "x" }', ["GET /orders"]),
        ('{ .shared = "from-resource" && kind = client }', ["GET inventory", "SELECT"]),
        ('{ resource.shared = "from-resource" && span.shared = "x" }', ["GET /orders"]),
        ('{ span."attr with space" = "yes" }', ["publish orders"]),
        ('{ ."tenant.id" = "acme" }', ["GET /stock"]),
        ('{ .tenant.id = "acme" }', ["GET /stock"]),
        ("{ .ratio < 0.75 }", ["process orders"]),
        ("{ .retries > 2.5 }", ["process orders"]),
        ("{ .flag = true }", ["process orders"]),
        ("{ .flag != false }", ["process orders"]),
        # Values of different types never compare equal.
        ('{ .retries = "3" }', []),
        ('{ .http.status_code != "200" }', []),
        # nil matches missing attributes only.
        ("{ .peer != nil }", ["GET inventory"]),
        ("{ .retries = nil && kind = consumer }", []),
        ('{ .missing = nil && name = "SELECT" }', ["SELECT"]),
        ('{ .missing != "x" }', []),
        # Arrays: any member.
        ('{ .tags = "b" }', ["GET /stock"]),
        ('{ .tags != "a" }', []),
        ('{ .tags =~ "[ab]" }', ["GET /stock"]),
    ],
)
def test_attributes(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('{ name =~ "GET.*" }', ["GET /orders", "GET inventory", "GET /stock"]),
        # Fully anchored, as in Tempo: a substring does not match.
        ('{ name =~ "orders" }', []),
        ('{ name =~ ".*orders" }', ["GET /orders", "publish orders", "process orders"]),
        ('{ name !~ ".*orders" && kind != internal }', ["GET inventory", "GET /stock", "SELECT"]),
        ("{ name =~ `GET /(orders|stock)` }", ["GET /orders", "GET /stock"]),
        ('{ .missing !~ "x" }', []),
        ('{ .retries =~ "3" }', []),
    ],
)
def test_regex_operators(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('{ kind = server && .tenant.id = "acme" }', ["GET /stock"]),
        ('{ name = "SELECT" || name = "orphan" }', ["SELECT", "orphan"]),
        ("{ !(kind = client) && status = error }", []),
        ("{ !(kind = server) && duration > 40ms }", ["process orders"]),
        # && and || share one precedence level and apply left to right, as in Tempo's grammar.
        ('{ name = "orphan" || name = "SELECT" && status = error }', ["SELECT"]),
        ('{ name = "orphan" || (name = "SELECT" && status = error) }', ["SELECT", "orphan"]),
    ],
)
def test_logical_operators_inside_a_filter(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Both sides must match in the same trace; the result holds the spans of both.
        ("{ status = error } && { kind = consumer }", ["SELECT", "process orders"]),
        ("{ status = error } && { kind = internal }", []),
        ('{ status = ok } || { name = "SELECT" }', ["SELECT", "orphan"]),
        # child: right-hand spans whose parent matches the left
        ("{ kind = server } > { kind = client }", ["GET inventory", "SELECT"]),
        ('{ name = "GET /orders" } > { status = error }', []),
        # descendant
        ('{ name = "GET /orders" } >> { status = error }', ["SELECT"]),
        ('{ resource.service.name = "api" } >> { kind = server }', ["GET /stock"]),
        # parent / ancestor: right-hand spans that are a parent / ancestor of a left-hand span
        ("{ status = error } < { }", ["GET /stock"]),
        ("{ status = error } << { kind = server }", ["GET /orders", "GET /stock"]),
        # sibling
        ("{ kind = client } ~ { kind = producer }", ["publish orders"]),
        ("{ kind = producer } ~ { kind = producer }", []),
        # Structural operators bind tighter than && and ||.
        ('{ kind = server } > { kind = client } && { name = "orphan" }', []),
        ("{ kind = consumer } || { kind = server } > { status = error }", ["SELECT", "process orders"]),
        ('({ name = "orphan" } || { kind = server }) > { kind = client }', ["GET inventory", "SELECT"]),
    ],
)
def test_spanset_operators(query: str, expected: list[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            '{ resource.service.name = "api" } | count() = 3',
            ["GET /orders", "GET inventory", "publish orders"],
        ),
        ('{ resource.service.name = "api" } | count() > 3', []),
        ("{ kind = server } | avg(duration) = 60ms", ["GET /orders", "GET /stock"]),
        ("{ kind = server } | avg(duration) > 60ms", []),
        ("{ } | max(duration) >= 100ms | count() > 6", []),
        ("{ } | max(duration) >= 100ms | count() = 6", [s.name for s in SPANS[:6]]),
        ("{ kind = client } | min(duration) < 10ms", ["GET inventory", "SELECT"]),
        ("{ kind = client } | sum(duration) = 35ms", ["GET inventory", "SELECT"]),
        ("{ .retries != nil } | sum(.retries) > 2", ["process orders"]),
        # A later filter stage narrows the spans of the previous one.
        ('{ kind = server } | { resource.service.name = "inventory" }', ["GET /stock"]),
        ("{ kind = server } | count() > 1 | { duration < 50ms }", ["GET /stock"]),
    ],
)
def test_pipelines(query: str, expected: list[str]) -> None:
    assert names(query) == expected


def test_trace_without_its_root_has_no_root_intrinsics() -> None:
    assert names('{ !(rootServiceName != nil) && name = "orphan" }') == ["orphan"]
    assert names('{ rootName != "x" && name = "orphan" }') == []


def test_matches_and_parsed_queries_are_reusable() -> None:
    query = parse_traceql("{ status = error }")
    assert matches(query, SPANS)
    assert not matches(query, SPANS[4:])
    assert parse_traceql("{ status = error }") is query


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("{ .a = }", "column 8"),
        ('{ name = "x" } >', "ends too early"),
        ("{ foo = 1 }", "unknown identifier 'foo'"),
        ("{ span:nope = 1 }", "unknown intrinsic 'span:nope'"),
        ('{ name =~ "(" }', "invalid regular expression"),
        ("{ name =~ .x }", "quoted regular expression"),
        ("{} | bogus() > 1", "column 6: unexpected 'bogus'"),
        ("{} | count(duration) > 1", "count() takes no argument"),
        ("{ .a # 1 }", "unexpected character '#'"),
        ("", "ends too early"),
    ],
)
def test_bad_queries_say_what_and_where(query: str, where: str) -> None:
    with pytest.raises(InvalidExpression) as caught:
        parse_traceql(query)
    assert where in str(caught.value)
