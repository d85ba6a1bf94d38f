"""The trace index: selective searches read only the traces that can match, broad ones stop at the
limit, evicted traces leave it, and its plan never rules out a trace that matches."""

from __future__ import annotations

import gc
import time
import weakref

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from hoptrace.harness import poll_until
from hoptrace.harness.backend import _index_keeper, _tag_catalog
from hoptrace.harness.backend._index_plan import AllOf, AnyOf, Has, LongerThan, plan
from hoptrace.harness.backend._metrics_api import query_range, range_request_nanos
from hoptrace.harness.backend._query_gate import QueryGate
from hoptrace.harness.backend._receiver import Receiver
from hoptrace.harness.backend._search import SearchRequest, search
from hoptrace.harness.backend._store import SpanOrigin, StoreLimits, TraceStore
from hoptrace.harness.backend._tags import tag_names, tag_values
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.traceql import Attribute, Intrinsic, parse_metrics_query, parse_traceql

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _origin(service: str) -> SpanOrigin:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    return SpanOrigin(
        resource.SerializeToString(), "", InstrumentationScope(name="t").SerializeToString(), ""
    )


ORIGINS = {name: _origin(name) for name in ("api", "db", "worker")}


def _span(
    trace: int, span: int, name: str, *, parent: int = 0, route: str = "", error: bool = False
) -> bytes:
    message = PbSpan(
        trace_id=trace.to_bytes(16, "big"),
        span_id=span.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=PbSpan.SPAN_KIND_SERVER if not parent else PbSpan.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0 + trace * S,
        end_time_unix_nano=T0 + trace * S + span * 1_000_000,
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET),
    )
    if route:
        message.attributes.add(key="http.route", value=AnyValue(string_value=route))
        tags = ArrayValue(values=[AnyValue(string_value="a"), AnyValue(string_value=route)])
        message.attributes.add(key="tags", value=AnyValue(array_value=tags))
    return message.SerializeToString()


def _fill(store: TraceStore, traces: range) -> None:
    """Trace n: an api root GET /n%5 (route /r<n%3>) and a db child; every 10th child fails."""
    for n in traces:
        store.add(
            [
                (n.to_bytes(16, "big"), ORIGINS["api"], _span(n, 1, f"GET /{n % 5}", route=f"/r{n % 3}")),
                (n.to_bytes(16, "big"), ORIGINS["db"], _span(n, 2, "SELECT", parent=1, error=n % 10 == 0)),
            ]
        )


def _search(store: TraceStore, query: str, limit: int = 1000) -> tuple[set[int], int]:
    document = search(store, SearchRequest(query=parse_traceql(query), limit=limit))
    found = {int(hit["traceID"], 16) for hit in document["traces"]}
    return found, document["metrics"]["inspectedTraces"]


@pytest.fixture
def store() -> TraceStore:
    store = TraceStore(StoreLimits(min_retention_seconds=0))
    _fill(store, range(1, 101))
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('{ name = "GET /3" }', {n for n in range(1, 101) if n % 5 == 3}),
        ("{ status = error }", {10, 20, 30, 40, 50, 60, 70, 80, 90, 100}),
        (
            '{ resource.service.name = "db" && status = error } && { name = "GET /0" }',
            {10, 20, 30, 40, 50, 60, 70, 80, 90, 100},
        ),
        (
            '{ span.http.route = "/r1" && name = "GET /1" }',
            {n for n in range(1, 101) if n % 3 == 1 and n % 5 == 1},
        ),
        ('{ .tags = "/r2" } >> { status = error }', {20, 50, 80}),
        ('{ name = "nothing like it" }', set()),
        ('{ resource.service.name = "worker" } || { name = "GET /4" && status = error }', set()),
    ],
)
def test_selective_searches_read_only_the_traces_that_can_match(
    store: TraceStore, query: str, expected: set[int]
) -> None:
    found, inspected = _search(store, query)

    assert found == expected
    assert inspected <= max(len(expected), 34)  # at most the traces with the rarest posting


def test_broad_search_stops_at_the_limit_newest_first(store: TraceStore) -> None:
    found, inspected = _search(store, "{ }", limit=5)

    assert found == {96, 97, 98, 99, 100}
    assert inspected == 5


def test_queries_the_index_cannot_narrow_still_find_everything(store: TraceStore) -> None:
    assert _search(store, '{ name =~ "GET /[12]" && duration > 0.5ms }')[0] == {
        n for n in range(1, 101) if n % 5 in (1, 2)
    }
    assert _search(store, '{ name != "SELECT" } !> { status = error }')[0] == set()
    assert _search(store, "{ duration >= 2ms }")[0] == set(range(1, 101))


def test_new_spans_and_evictions_reach_the_index(store: TraceStore) -> None:
    assert _search(store, '{ name = "late" }')[0] == set()
    store.add(
        [(7).to_bytes(16, "big"), ORIGINS["worker"], _span(7, 3, "late", parent=2)]
        and [((7).to_bytes(16, "big"), ORIGINS["worker"], _span(7, 3, "late", parent=2))]
    )
    assert _search(store, '{ name = "late" }')[0] == {7}
    assert tag_values(store, Attribute("resource", "service.name"), None) == [
        ("string", "api"),
        ("string", "db"),
        ("string", "worker"),
    ]

    small = TraceStore(StoreLimits(max_spans=10, min_retention_seconds=0))
    _fill(small, range(1, 3))
    assert tag_values(small, Intrinsic("name"), None) == [
        ("string", "GET /1"),
        ("string", "GET /2"),
        ("string", "SELECT"),
    ]
    _fill(small, range(3, 12))  # room for five traces: 1..6 are evicted
    assert _search(small, "{ }")[0] == {7, 8, 9, 10, 11}
    assert _search(small, '{ name = "GET /1" }')[0] == {11}
    assert "tags" in tag_names(small, "span")["span"]
    assert tag_values(small, Attribute("span", "http.route"), None) == [
        ("string", "/r0"),
        ("string", "/r1"),
        ("string", "/r2"),
    ]


def test_metrics_read_only_the_traces_in_the_window(store: TraceStore) -> None:
    query = parse_metrics_query('{ name = "SELECT" && status = error } | count_over_time()')
    request = range_request_nanos(query, T0 + 50 * S, T0 + 80 * S, 10 * S, None)

    document = query_range(store, request)

    (series,) = document["series"]
    assert sum(sample["value"] for sample in series["samples"]) == 3  # traces 50, 60, 70
    assert document["metrics"]["inspectedTraces"] == 3


@pytest.mark.parametrize(
    ("query", "requirement"),
    [
        ("{ }", None),
        ('{ name = "a" }', Has(("name", "a"))),
        ('{ "a" = name && kind = server }', AllOf((Has(("name", "a")), Has(("kind", "server"))))),
        (
            '{ name = "a" || .x = 1 }',
            AnyOf(
                (
                    Has(("name", "a")),
                    AnyOf((Has(("attr", "span", "x", "n1.0")), Has(("attr", "resource", "x", "n1.0")))),
                )
            ),
        ),
        ('{ name = "a" || duration > 1s }', None),
        ('{ name != "a" }', None),
        ('{ name = "a" } !>> { status = error }', Has(("status", "error"))),
        (
            '{ name = "a" } ~ { rootServiceName = "api" }',
            AllOf((Has(("name", "a")), Has(("rootService", "api")))),
        ),
        ("{ duration > 2s } | count() > 3", LongerThan(2e9, False)),
        ('({ resource.x = "y" } | count() > 1) && { }', Has(("attr", "resource", "x", "sy"))),
        ('{ parent.name = "x" && .flag = true && span.x = nil }', None),
        ('{ instrumentation.lib = "pg" }', Has(("attr", "instrumentation", "lib", "spg"))),
        ('{ instrumentation:version = "2" }', Has(("attr", "intrinsic", "instrumentation:version", "s2"))),
    ],
)
def test_plan_is_what_every_matching_trace_has(query: str, requirement: object) -> None:
    assert plan(parse_traceql(query)) == requirement


def test_instrumentation_filters_read_only_the_traces_of_that_scope(store: TraceStore) -> None:
    scope = InstrumentationScope(
        name="pg.client", version="2.0", attributes=[KeyValue(key="lib", value=AnyValue(string_value="pg"))]
    )
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="db"))])
    pg = SpanOrigin(resource.SerializeToString(), "", scope.SerializeToString(), "")
    store.add([((n).to_bytes(16, "big"), pg, _span(n, 3, "query", parent=2)) for n in (101, 102)])

    assert _search(store, '{ instrumentation.lib = "pg" }') == ({101, 102}, 2)
    assert _search(store, '{ instrumentation:version = "2.0" && instrumentation:name = "pg.client" }') == (
        {101, 102},
        2,
    )
    assert _search(store, '{ instrumentation:name = "t" }')[0] == set(range(1, 101))


def test_an_origin_of_one_trace_is_indexed_when_a_query_first_asks() -> None:
    # The first query naming a resource attribute indexes it over every stored trace; a trace that is the
    # only one of its origin was once left out of that second reading, so the plan ruled out a match.
    store = TraceStore(StoreLimits(min_retention_seconds=0))
    deployment = KeyValue(key="deployment", value=AnyValue(string_value="prod"))
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="x")), deployment]
    )
    origin = SpanOrigin(
        resource.SerializeToString(), "", InstrumentationScope(name="t").SerializeToString(), ""
    )
    store.add([((1).to_bytes(16, "big"), origin, _span(1, 1, "only"))])

    assert _search(store, '{ name = "only" }')[0] == {1}
    assert _search(store, '{ resource.deployment = "prod" }')[0] == {1}


def test_a_store_with_an_index_is_still_freed() -> None:
    store = TraceStore()
    _fill(store, range(1, 3))
    assert _search(store, "{ }")[0] == {1, 2}
    collected = weakref.ref(store)

    del store
    gc.collect()

    assert collected() is None


def test_an_attribute_first_queried_is_learned_from_what_the_index_holds(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = index_for(store)
    index.refresh()
    monkeypatch.setattr(index, "_read_again", lambda: pytest.fail("every trace read again"))
    expected = {n for n in range(1, 101) if n % 3 == 2}

    found, inspected = _search(store, '{ span.http.route = "/r2" }')

    assert found == expected
    assert inspected == len(expected)


def test_an_attribute_with_more_values_than_autocomplete_keeps_is_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_tag_catalog, "MAX_VALUES_PER_TAG", 2)
    store = TraceStore(StoreLimits(min_retention_seconds=0))
    _fill(store, range(1, 31))
    index = index_for(store)
    index.refresh()  # /r0, /r1, /r2: the third route overflows what is kept
    read_again = index._read_again
    calls: list[None] = []
    monkeypatch.setattr(index, "_read_again", lambda: calls.append(read_again()))

    assert _search(store, '{ span.http.route = "/r2" }')[0] == {n for n in range(1, 31) if n % 3 == 2}
    assert len(calls) == 1


def test_the_receiver_has_what_it_stores_indexed_before_any_query() -> None:
    store = TraceStore()
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add()
    spans.resource.CopyFrom(Resource.FromString(ORIGINS["api"].resource))
    spans.scope_spans.add().spans.append(PbSpan.FromString(_span(5, 1, "GET /x", route="/r9")))

    Receiver(store).export(request)

    index = index_for(store)  # candidates() and tag_values() answer from what is read, reading nothing
    found = poll_until(
        lambda: index.candidates(Has(("name", "GET /x"))), timeout=10, what="the index to catch up"
    )
    assert found == [(5).to_bytes(16, "big")]
    assert index.tag_values(["span"], "http.route") == [("string", "/r9")]
    assert index.refresh() is False


def test_a_refresh_with_a_budget_reads_that_many_traces_at_a_time() -> None:
    store = TraceStore(StoreLimits(min_retention_seconds=0))
    index = index_for(store)
    _fill(store, range(1, 101))

    steps = 1
    while index.refresh(budget=7):
        steps += 1

    assert steps == 15  # 100 traces, 7 a step
    assert _search(store, '{ name = "GET /3" }')[0] == {n for n in range(1, 101) if n % 5 == 3}


def test_a_refresh_with_a_budget_takes_only_the_reports_of_the_traces_it_reads() -> None:
    # After a burst, a keeper step that took every report (~70k traces at 500k spans) held the index's
    # lock ~0.4 s, and the first query waited for it.
    store = TraceStore(StoreLimits(min_retention_seconds=0))
    index = index_for(store)
    _fill(store, range(1, 101))  # one report per trace

    assert index.refresh(budget=10) is True

    assert len(index._pending) == 90
    unread, read = index.split_candidates(None) or ((), [])
    assert len(list(unread)) == 90
    assert [int.from_bytes(trace_id, "big") for trace_id in read] == list(range(10, 0, -1))


def test_the_index_keeper_leaves_the_interpreter_to_a_query_in_flight() -> None:
    store = TraceStore(StoreLimits(min_retention_seconds=0), query_gate=QueryGate(query_idle_seconds=0))
    index = index_for(store)
    _fill(store, range(1, 11))
    _index_keeper._waiting.add(index)

    with store.query_gate.admit():
        assert _index_keeper._step() is True  # deferred: more to do
        assert index.refresh(budget=0) is True  # nothing read

    _index_keeper._step()
    assert index.refresh(budget=0) is False


def test_the_index_keeper_waits_a_moment_after_a_query() -> None:
    # The query's response is still being sent, and another query of a burst may follow: a step then
    # (~10-50 ms after a burst of ingest) would hold the interpreter and the index while they wait.
    store = TraceStore(StoreLimits(min_retention_seconds=0), query_gate=QueryGate(query_idle_seconds=3600))
    index = index_for(store)
    _fill(store, range(1, 11))
    _index_keeper._waiting.add(index)
    with store.query_gate.admit():
        pass

    assert _index_keeper._step() is True  # deferred
    assert index.refresh(budget=0) is True  # nothing read


def test_the_index_keeper_waits_a_moment_after_a_tags_call() -> None:
    # Autocomplete sends a call per keystroke, answered from the catalogue without a query slot.
    gate = QueryGate(query_idle_seconds=3600)
    store = TraceStore(query_gate=gate)
    assert gate.queries_active(time.monotonic()) is False

    tag_names(store, None)

    assert gate.queries_active(time.monotonic()) is True
