"""Searches right after ingest, through the receiver (which catalogues each request's tags): before the
index has read anything they answer as after it caught up, and a search whose names or values no request
not read yet had skips the traces not read yet without reading them."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from hoptrace.harness.backend._index_plan import Has
from hoptrace.harness.backend._receiver import Receiver
from hoptrace.harness.backend._search import SearchRequest, search
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._tag_catalog import MAX_VALUES_PER_TAG
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.traceql import parse_traceql

from .test_trace_index import _span


def _request(spans: list[tuple[str, bytes]]) -> ExportTraceServiceRequest:
    """One request of ``(service, serialized span)`` pairs, a resource per service."""
    request = ExportTraceServiceRequest()
    scopes = {}
    for service, data in spans:
        if service not in scopes:
            resource = request.resource_spans.add()
            resource.resource.attributes.add(key="service.name", value=AnyValue(string_value=service))
            scopes[service] = resource.scope_spans.add()
            scopes[service].scope.name = "t"
        scopes[service].spans.add().MergeFromString(data)
    return request


def _own_ids(data: bytes) -> bytes:
    """The span with ids of its own trace (the receiver works out rows only when a request's span ids
    are distinct)."""
    span = PbSpan.FromString(data)
    trace = int.from_bytes(span.trace_id, "big") << 8
    span.span_id = (trace + int.from_bytes(span.span_id, "big")).to_bytes(8, "big")
    if span.parent_span_id:
        span.parent_span_id = (trace + int.from_bytes(span.parent_span_id, "big")).to_bytes(8, "big")
    return span.SerializeToString()


def _traces(numbers: range, root: str) -> ExportTraceServiceRequest:
    """Trace n: an api root ``<root> /n%5`` (route /r<n%3>) and a db child; every 10th child fails."""
    spans = []
    for n in numbers:
        spans.append(("api", _own_ids(_span(n, 1, f"{root} /{n % 5}", route=f"/r{n % 3}"))))
        spans.append(("db", _own_ids(_span(n, 2, "SELECT", parent=1, error=n % 10 == 0))))
    return _request(spans)


def _odd_kind_span(trace: int) -> bytes:
    span = PbSpan.FromString(_span(trace, 1, "odd kind"))
    span.kind = 9  # type: ignore[assignment]  # out of OTLP's range: reads as unspecified
    return span.SerializeToString()


def _shop(receiver: Receiver) -> None:
    """Traces 1-40 (roots GET) read by the index; then, not read yet: 41-80 (roots POST), a late span
    of trace 7 (read before, root GET /2) from service worker, and trace 81 of a kind out of range."""
    receiver.export(_traces(range(1, 41), "GET"))
    assert index_for(receiver.store).refresh() is False
    receiver.export(_traces(range(41, 81), "POST"))
    receiver.export(_request([("worker", _span(7, 3, "late", parent=2, route="/late"))]))
    receiver.export(_request([("api", _odd_kind_span(81))]))
    receiver.export(_request([("api", _own_ids(_span(82, 1, "split")))]))  # trace 82 in two requests
    receiver.export(_request([("worker", _own_ids(_span(82, 2, "rest", parent=1, error=True)))]))


def _found(store: TraceStore, query: str, limit: int = 1000) -> tuple[list[int], int]:
    document = search(store, SearchRequest(query=parse_traceql(query), limit=limit))
    found = sorted(int(hit["traceID"], 16) for hit in document["traces"])
    return found, document["metrics"]["inspectedTraces"]


QUERIES = [
    '{ name = "GET /3" }',
    '{ name = "POST /3" }',
    '{ name = "late" }',
    '{ name = "no such span" }',
    '{ resource.service.name = "api" && name = "no such span" }',
    '{ resource.service.name = "nowhere" }',
    '{ resource.service.name = "worker" }',
    '{ resource.service.name = "worker" && name = "GET /2" }',  # parts read and not read, one trace
    '{ name = "GET /2" } && { resource.service.name = "worker" }',
    '{ name = "GET /2" } || { name = "late" }',
    '{ name = "GET /2" } || { name = "nope" }',
    '{ name = "nope" } || { resource.service.name = "nowhere" }',
    '{ name = "POST /1" || name = "nope" }',
    "{ kind = consumer }",
    "{ kind = unspecified }",
    "{ kind = server && status = error }",
    "{ status = error }",
    "{ status = ok }",
    '{ span.http.route = "/late" }',
    '{ .http.route = "/nope" }',
    '{ span.http.route = "/r1" && name = "GET /1" }',
    '{ instrumentation:name = "nope" }',
    '{ name = "split" } && { resource.service.name = "worker" }',  # one trace, two requests not read
    '{ name = "split" } && { status = error }',
    '{ resource.service.name = "worker" } || { kind = unspecified }',
    '{ resource.service.name = "db" && status = error } && { name = "POST /0" }',
    '{ resource.service.name = "api" } && { name = "late" }',  # trace 7: api read, late not
    "{ }",
]


@pytest.mark.parametrize("query", QUERIES)
def test_a_search_right_after_ingest_answers_as_after_the_index_caught_up(query: str) -> None:
    behind, caught_up = TraceStore(), TraceStore()
    _shop(Receiver(caught_up))
    assert index_for(caught_up).refresh() is False

    with behind.query_gate.admit():  # a query in flight: the index keeper leaves the traces unread
        _shop(Receiver(behind))
        found, _ = _found(behind, query)

    assert found == _found(caught_up, query)[0]
    if query == "{ kind = unspecified }":
        assert found == [81]


@pytest.mark.parametrize(
    "query",
    [
        '{ name = "no such span" }',
        '{ resource.service.name = "api" && name = "no such span" }',
        '{ resource.service.name = "nowhere" }',
        '{ name = "nope" } || { status = ok }',
    ],
)
def test_a_search_for_what_no_unread_request_had_reads_no_unread_trace(query: str) -> None:
    store = TraceStore()
    receiver = Receiver(store)
    with store.query_gate.admit():
        receiver.export(_traces(range(1, 41), "GET"))
        receiver.export(_traces(range(41, 81), "POST"))

        assert _found(store, query) == ([], 0)
        assert index_for(store).refresh(budget=0) is True


def test_a_trace_read_before_and_written_again_is_searched_whole() -> None:
    store = TraceStore()
    receiver = Receiver(store)
    with store.query_gate.admit():
        _shop(receiver)

        # GET /2 is in no request not read yet; trace 7's root (read) has it, its late span (not) worker.
        assert _found(store, '{ name = "GET /2" } && { resource.service.name = "worker" }') == ([7], 1)
        assert index_for(store).refresh(budget=0) is True


def test_a_name_with_more_values_than_the_catalogue_keeps_proves_nothing() -> None:
    store = TraceStore()
    receiver = Receiver(store)
    index = index_for(store)
    count = MAX_VALUES_PER_TAG + 5
    with store.query_gate.admit():
        receiver.export(_traces(range(1, 2), "GET"))
        receiver.export(_request([("api", _span(n, 1, f"n{n}")) for n in range(100, 100 + count)]))
        assert index.refresh(budget=1) is True  # the first request read: its catalogue forgotten
        listed = {value for _, value in index.tag_values(["intrinsic"], "name")}
        dropped = [n for n in range(100, 100 + count) if f"n{n}" not in listed]

        assert dropped  # values past what the catalogue keeps
        assert not any(index._unread_tags.lacks(Has(("name", f"n{n}"))) for n in range(100, 100 + count))
        assert _found(store, f'{{ name = "n{dropped[0]}" }}')[0] == [dropped[0]]


def test_traces_read_again_for_an_overflowed_attribute_are_searched_as_unread() -> None:
    # A query on an attribute whose values overflowed the index's catalogue makes it read every trace
    # again; until it has, the catalogue of unread requests does not know them and proves nothing.
    store = TraceStore()
    receiver = Receiver(store)
    spans = []
    for n in range(1, MAX_VALUES_PER_TAG + 10):
        span = PbSpan.FromString(_span(n, 1, "GET"))
        span.attributes.add(key="request.id", value=AnyValue(string_value=f"r{n}"))
        spans.append(("api", span.SerializeToString()))
    with store.query_gate.admit():
        receiver.export(_request(spans))
        assert index_for(store).refresh() is False

        assert _found(store, '{ span.request.id = "r5" }')[0] == [5]


def test_intrinsic_values_right_after_ingest_list_a_kind_out_of_range_as_unspecified() -> None:
    store = TraceStore()
    with store.query_gate.admit():
        Receiver(store).export(_request([("api", _odd_kind_span(1))]))
        kinds = index_for(store).tag_values(["intrinsic"], "kind")
    assert kinds == [("keyword", "unspecified")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ status = error }", [10, 20, 30, 40, 50, 60, 70, 80, 82]),
        ('{ resource.service.name = "worker" && status = error }', [82]),
        ('{ name = "POST /0" && kind = server }', [45, 50, 55, 60, 65, 70, 75, 80]),
        ('{ name = "split" } && { resource.service.name = "worker" }', [82]),
        ('{ resource.service.name = "api" } && { name = "late" }', [7]),
        (
            "{ kind = unspecified } || { status = error && kind = client }",
            [10, 20, 30, 40, 50, 60, 70, 80, 81, 82],
        ),
    ],
)
def test_a_search_on_span_keys_right_after_ingest_inspects_only_the_traces_that_may_match(
    query: str, expected: list[int]
) -> None:
    # The receiver worked out each request's span keys (service, name, kind, status): the traces not
    # read yet whose keys cannot match are skipped without reading them, and without the index.
    store = TraceStore()
    with store.query_gate.admit():
        _shop(Receiver(store))
        found, inspected = _found(store, query)

        assert found == expected
        assert inspected <= len(expected) + 1  # and trace 7 (read before, written again) is read whole
        assert index_for(store).refresh(budget=0) is True


def _one_trace_requests(receiver: Receiver) -> None:
    """150 requests of one trace each (every 7th has an error), and trace 1000 in the first and last."""
    receiver.export(_request([("api", _own_ids(_span(1000, 1, "first half")))]))
    for n in range(1, 151):
        receiver.export(
            _request([("db" if n % 3 else "api", _own_ids(_span(n, 1, f"op {n % 4}", error=n % 7 == 0)))])
        )
    receiver.export(_request([("worker", _own_ids(_span(1000, 2, "second half", parent=1)))]))


STEP_QUERIES = [
    "{ status = error }",
    '{ resource.service.name = "api" && name = "op 1" }',
    '{ name = "first half" } && { resource.service.name = "worker" }',
    '{ name = "op 2" } || { status = error }',
]


def test_searches_between_steps_of_the_index_answer_as_after_it_caught_up() -> None:
    # Each step takes a few requests from those pending; the rows kept for narrowing follow (and are
    # compacted once most were taken).
    behind, caught_up = TraceStore(), TraceStore()
    _one_trace_requests(Receiver(caught_up))
    assert index_for(caught_up).refresh() is False
    expected = [_found(caught_up, query)[0] for query in STEP_QUERIES]
    index = index_for(behind)
    with behind.query_gate.admit():
        _one_trace_requests(Receiver(behind))
        steps = 0
        while True:
            assert [_found(behind, query)[0] for query in STEP_QUERIES] == expected, steps
            if not index.refresh(budget=9):
                break
            steps += 1
    assert steps > 10
    assert expected[2] == [1000]
