"""Searches answered before the index has read what was just stored: the same answers as after it caught
up, and the traces not read yet stay unread when the query can tell from their bytes."""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from hoptrace.harness.backend._index_plan import plan
from hoptrace.harness.backend._search import SearchRequest, search
from hoptrace.harness.backend._store import StoreLimits, TraceStore
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.backend._unread_search import EVERYTHING, Needs, _traces_holding, needs_of
from hoptrace.harness.traceql import parse_traceql

from .test_trace_index import ORIGINS, _fill, _span


def _found(store: TraceStore, query: str, limit: int = 1000) -> list[int]:
    document = search(store, SearchRequest(query=parse_traceql(query), limit=limit))
    return sorted(int(hit["traceID"], 16) for hit in document["traces"])


def _odd_values_span(trace: int) -> bytes:
    """A span whose attributes decode to text that is not in its bytes: bytes (hex) and a kvlist (JSON)."""
    span = PbSpan.FromString(_span(trace, 1, "odd"))
    span.attributes.add(key="blob", value=AnyValue(bytes_value=b"\xab\xcd"))
    nested = KeyValueList(values=[KeyValue(key="a", value=AnyValue(int_value=1))])
    span.attributes.add(key="kv", value=AnyValue(kvlist_value=nested))
    return span.SerializeToString()


def _store_behind() -> TraceStore:
    """Traces 1-100 read by the index; then, not read yet: 101-160, a late span of trace 7 (read
    before), and trace 161 with bytes and kvlist attributes."""
    store = TraceStore(StoreLimits(min_retention_seconds=0))
    _fill(store, range(1, 101))
    assert index_for(store).refresh() is False
    _fill(store, range(101, 161))
    store.add([((7).to_bytes(16, "big"), ORIGINS["worker"], _span(7, 3, "late", parent=2, route="/late"))])
    store.add([((161).to_bytes(16, "big"), ORIGINS["api"], _odd_values_span(161))])
    return store


QUERIES = [
    '{ name = "GET /3" }',
    '{ name = "late" }',
    '{ span.http.route = "/late" }',
    '{ span.http.route = "/r1" && name = "GET /1" }',
    '{ .tags = "/r2" } >> { status = error }',
    '{ name = "nothing like it" }',
    '{ name = "GET /4" } || { name = "late" }',
    '{ resource.service.name = "worker" && name = "late" }',
    "{ }",
    '{ name =~ "GET /[12]" }',
    '{ resource.service.name = "worker" }',
    "{ status = error }",
]


@pytest.mark.parametrize("query", QUERIES)
def test_a_search_before_the_index_caught_up_answers_as_after(query: str) -> None:
    behind, caught_up = _store_behind(), _store_behind()
    assert index_for(caught_up).refresh() is False

    assert _found(behind, query) == _found(caught_up, query)


@pytest.mark.parametrize("query", ['{ name = "late" }', '{ span.http.route = "/late" }', "{ }"])
def test_a_search_that_can_tell_from_the_bytes_leaves_the_traces_unread(query: str) -> None:
    store = _store_behind()

    found = _found(store, query, limit=5)

    assert found == ([7] if "late" in query else [7, 158, 159, 160, 161])  # 7: written again
    assert index_for(store).refresh(budget=0) is True  # still 62 traces to read


def test_a_search_with_a_limit_finds_the_most_recently_written_traces_read_or_not() -> None:
    behind, caught_up = _store_behind(), _store_behind()
    for store in (behind, caught_up):  # trace 50 (read before) written again, between 161 and 162
        store.add([((50).to_bytes(16, "big"), ORIGINS["db"], _span(50, 9, "GET /0", parent=1))])
        _fill(store, range(162, 163))
    assert index_for(caught_up).refresh() is False

    assert _found(behind, '{ name = "GET /0" }', limit=3) == [50, 155, 160]
    assert _found(caught_up, '{ name = "GET /0" }', limit=3) == [50, 155, 160]
    assert _found(behind, "{ }", limit=3) == _found(caught_up, "{ }", limit=3) == [50, 161, 162]


def test_what_a_query_needs_in_the_bytes() -> None:
    def needs(query: str) -> Needs | None:
        return needs_of(plan(parse_traceql(query)))

    assert needs('{ name = "a" && span.k = "v" }') == Needs((b"a", b"k", b"v"))
    assert needs('{ span.k = 5 } || { name = "b" }') == Needs(any_of=((Needs((b"k",)), Needs((b"b",))),))
    assert needs('{ span.k = "beef" }') == Needs((b"k", b"beef"))  # a bytes value never equals a string
    assert needs('{ resource.service.name = "a" && name = "b" }') == Needs((b"b",))
    assert needs('{ resource.service.name = "a" }') is None  # in the resource, not the span
    assert needs('{ name = "a" } || { kind = server }') is None
    assert needs("{ duration > 1s }") is None
    assert needs("{ }") == EVERYTHING == needs('{ name != "a" }')


@pytest.mark.parametrize(
    "query",
    [
        '{ span.blob = "abcd" }',
        '{ .blob = "abcd" }',
        '{ span.blob =~ "ab.*" }',
        "{ span.blob != nil }",
        '{ span.kv = "{\\"a\\":1}" }',
        "{ span.kv != nil }",
    ],
)
def test_bytes_and_kvlist_values_match_no_condition_whether_the_index_read_them_or_not(query: str) -> None:
    # Tempo keeps such values as a JSON-encoded AnyValue that no TraceQL condition reads. Before, full
    # evaluation compared the hex of the bytes (and the kvlist's JSON) while the index ruled them out.
    behind, caught_up = _store_behind(), _store_behind()  # trace 161: bytes \xab\xcd, a kvlist
    assert index_for(caught_up).refresh() is False

    assert _found(behind, query) == _found(caught_up, query) == []


def test_bytes_and_kvlist_values_read_as_text_in_assertions() -> None:
    store = _store_behind()

    (span,) = store.get_trace(f"{161:032x}")

    assert span.attributes["blob"] == "abcd"
    assert span.attributes["kv"] == '{"a":1}'
    assert _found(store, '{ span.blob = nil && span.kv = nil && name = "odd" }') == [161]


def test_a_text_is_found_in_each_trace_of_a_chunk_that_holds_it() -> None:
    traces = [b"..ab", b"c..abc", b"", b"abc", b"xyz"]  # "abc" across the first two, then in 2nd and 4th

    assert _traces_holding(b"abc", traces) == [0, 1, 3]
    assert _traces_holding(b"nothing", traces) == []
