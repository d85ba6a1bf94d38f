"""TraceQL metrics right after ingest: they count the spans the trace index has not read yet from the rows
the receiver worked out of each request (``_pending_rows``), without reading them, and answer exactly
what they answer once the index has read everything; requests whose rows cannot be trusted make them
read first, as before."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.trace import SpanKind
from opentelemetry.trace import Status as SdkStatus
from opentelemetry.trace import StatusCode as SdkStatusCode

from hoptrace.harness.backend import EmbeddedBackend, _receiver, _store
from hoptrace.harness.backend._metrics_api import query_range, range_request_nanos
from hoptrace.harness.backend._receiver import Receiver
from hoptrace.harness.backend._store import StoreLimits, TraceStore
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.traceql import parse_metrics_query

from .conftest import ServiceFactory

S = 1_000_000_000
T0 = 1_700_000_000 * S
QUERIES = [
    "{ } | rate() by (resource.service.name)",
    "{ } | count_over_time() by (name, kind)",
    "{ status = error } | count_over_time() by (resource.service.name, status)",
    '{ resource.service.name = "svc-1" && kind = server } | rate()',
    "{ duration > 3ms } | count_over_time()",
    "{ } | quantile_over_time(duration, .5, .9) by (resource.service.name)",
    "{ } | histogram_over_time(duration)",
    "{ } | min_over_time(duration) by (name)",
    "{ } | avg_over_time(duration) by (status)",
]


def _answers(store: TraceStore) -> str:
    """Every query's whole answer (series, samples, exemplars, what it inspected), as JSON."""
    answers = {
        query: query_range(
            store, range_request_nanos(parse_metrics_query(query), T0, T0 + 120 * S, 10 * S, None)
        )
        for query in QUERIES
    }
    return json.dumps(answers, sort_keys=True)


def _span(rng: random.Random, trace_id: bytes, status: Status | None, kind: int) -> Span:
    start = T0 + rng.randrange(100 * S)
    span = Span(
        trace_id=trace_id,
        span_id=rng.randbytes(8),
        name=rng.choice(["GET /a", "GET /b", "SELECT", "publish"]),
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=start + rng.choice([0, 1, 2, 1024, 5 * 10**6, rng.randrange(40 * 10**6)]),
    )
    if status is not None:
        span.status.CopyFrom(status)
    return span


def _requests(
    rng: random.Random, statuses: str, requests: int = 12, kinds: tuple[int, ...] = (1, 2, 3, 4, 5, 9)
) -> list[bytes]:
    """Requests of traces from several services; a third of the traces go on in a later request.
    ``statuses``: ``"all"`` (each span sends one, as the Python SDK does), ``"some"`` (only errors and oks
    send one, as many exporters do: proto3 leaves an unset status out) or ``"none"``."""
    bodies = []
    carried: list[bytes] = []
    for _ in range(requests):
        message = ExportTraceServiceRequest()
        for service in ["svc-0", "svc-1", None, 7]:
            resource_spans = message.resource_spans.add()
            if isinstance(service, str):
                resource_spans.resource.attributes.add(
                    key="service.name", value=AnyValue(string_value=service)
                )
            elif service is not None:
                resource_spans.resource.attributes.add(key="service.name", value=AnyValue(int_value=service))
            scope_spans = resource_spans.scope_spans.add()
            trace_ids = [rng.randbytes(16) for _ in range(rng.randint(2, 6))] + carried[:2]
            carried = carried[2:]
            for trace_id in trace_ids:
                for _ in range(rng.randint(1, 5)):
                    code = rng.choice([0, 0, 1, 2, 7])
                    status = (
                        Status(code=code, message="boom" if code == 2 else "")  # type: ignore[arg-type]
                        if statuses == "all" or (statuses == "some" and code)
                        else None
                    )
                    scope_spans.spans.append(_span(rng, trace_id, status, rng.choice(kinds)))
                if rng.random() < 0.3:
                    carried.append(trace_id)
        bodies.append(message.SerializeToString())
    return bodies


def _answered_before_reading(bodies: list[bytes]) -> tuple[str, bool, str]:
    """The answers right after storing ``bodies`` (the index keeper held off by a query in flight),
    whether the index had still everything to read after them, and the answers once it read it."""
    store = TraceStore(StoreLimits(max_spans=100_000, min_retention_seconds=0))
    receiver = Receiver(store)
    index = index_for(store)
    with store.query_gate.admit():  # a query in flight: the index keeper leaves what is stored unread
        for body in bodies:
            receiver.export_protobuf(body)
        before = _answers(store)
        unread = index.learn(())
    index.refresh()
    return before, unread, _answers(store)


def test_metrics_count_unread_requests_from_their_rows_as_the_index_would() -> None:
    for statuses in ("all", "some", "none"):
        before, unread, after = _answered_before_reading(_requests(random.Random(5), statuses))
        assert unread, statuses  # answered without reading a trace
        assert before == after, statuses
        assert int(json.loads(before)[QUERIES[0]]["metrics"]["inspectedSpans"]) > 100  # every span


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (numbers and lengths below 128 here, or written as varints)."""
    size, length = len(payload), bytearray()
    while size > 0x7F:
        length.append(0x80 | (size & 0x7F))
        size >>= 7
    length.append(size)
    return bytes([number << 3 | 2]) + bytes(length) + payload


def _request_of_spans(spans: list[bytes]) -> bytes:
    """An export request of one resource (``svc-0``) and scope holding ``spans``, as serialized."""
    service = AnyValue(string_value="svc-0").SerializeToString()
    resource = _field(1, _field(1, b"\x0a\x0cservice.name" + _field(2, service)))
    return _field(1, resource + _field(2, b"".join(_field(2, span) for span in spans)))


def test_statuses_are_placed_on_their_spans_whatever_the_encoding() -> None:
    rng = random.Random(17)
    error, ok = Status(code=2, message="boom"), Status(code=1)  # type: ignore[arg-type]
    for shape in ("in field order", "flags after the status", "status first"):
        spans = []
        for number in range(60):
            span = _span(rng, rng.randbytes(16), None, rng.choice([1, 2]))
            status = error if number % 7 == 3 else ok if number % 11 == 5 else None
            if shape == "flags after the status":
                span.flags = 0x301
            if status is None or shape != "status first":
                if status is not None:
                    span.status.CopyFrom(status)
                spans.append(span.SerializeToString())
            else:  # a valid encoding protobuf's own encoders do not write: the status before the other fields
                spans.append(_field(15, status.SerializeToString()) + span.SerializeToString())
        before, unread, after = _answered_before_reading([_request_of_spans(spans)])
        assert unread, shape
        assert before == after, shape
        errors = json.loads(before)[QUERIES[2]]["metrics"]["inspectedSpans"]
        assert errors == str(sum(1 for number in range(60) if number % 7 == 3)), shape


def test_traces_read_before_and_written_again_keep_their_slot() -> None:
    rng = random.Random(9)
    bodies = _requests(rng, "all", requests=16)
    store = TraceStore(StoreLimits(max_spans=100_000, min_retention_seconds=0))
    receiver = Receiver(store)
    index = index_for(store)
    with store.query_gate.admit():
        for body in bodies[:8]:
            receiver.export_protobuf(body)
        index.refresh()  # the first half read; traces carried over go on in the second half
        for body in bodies[8:]:
            receiver.export_protobuf(body)
        before = _answers(store)
        assert index.learn(())
    index.refresh()
    assert _answers(store) == before


def test_requests_whose_rows_cannot_be_trusted_are_read_first() -> None:
    rng = random.Random(11)
    unspecified = _requests(rng, "all", requests=3, kinds=(0, 1, 2))  # proto3 leaves kind 0 out
    retried = _requests(rng, "all", requests=3)
    for bodies in (unspecified, [*retried, retried[1]]):  # a retry repeats spans byte for byte
        before, unread, after = _answered_before_reading(bodies)
        assert not unread  # the query read everything first
        assert before == after
    store = TraceStore(StoreLimits(max_spans=100_000, min_retention_seconds=0))
    receiver = Receiver(store)
    for body in retried:
        receiver.export_protobuf(body)
    once = _answers(store)
    receiver.export_protobuf(retried[1])
    assert _answers(store) == once  # the retry counts once


def test_a_long_trace_written_again_is_read_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # Checking a long trace for repeats of its spans at every write would be quadratic: past the bound
    # the store says "maybe", and metrics read first.
    monkeypatch.setattr(_store, "REPEAT_CHECK_SPANS", 3)
    rng = random.Random(19)
    trace_id = rng.randbytes(16)
    spans = [_span(rng, trace_id, None, 2).SerializeToString() for _ in range(8)]
    short = [_request_of_spans(spans[:2]), _request_of_spans(spans[2:3])]  # 2 spans, then 1 more
    long = [_request_of_spans(spans[:4]), _request_of_spans(spans[4:])]  # 4 spans (past 3), then 4 more
    for bodies, read_first in ((short, False), (long, True)):
        before, unread, after = _answered_before_reading(bodies)
        assert unread is not read_first
        assert before == after


def test_evicted_traces_are_not_counted_from_their_rows() -> None:
    bodies = _requests(random.Random(13), "all", requests=30)
    store = TraceStore(StoreLimits(max_spans=300, min_retention_seconds=0))
    receiver = Receiver(store)
    index = index_for(store)
    with store.query_gate.admit():
        for body in bodies:
            receiver.export_protobuf(body)
        before = _answers(store)
    assert store.stats().evicted_traces > 0
    index.refresh()
    assert _answers(store) == before


def test_grafana_metrics_right_after_sdk_services_exported(
    backend: EmbeddedBackend, service: ServiceFactory, tempo: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = index_for(backend.store)
    params = {"q": "{ } | rate() by (resource.service.name)", "since": "1h", "step": "60s"}
    # The index keeper is not asked to read (a query in flight would hold it off too, but would also hold
    # this query back): what the services export stays unread until a query reads it.
    monkeypatch.setattr(_receiver, "poke", lambda _: None)
    for name, protocol in (("checkout", "grpc"), ("billing", "http")):
        tracer = service(name, protocol).get_tracer("shop")
        for number in range(5):
            with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
                if number == 3:
                    root.set_status(SdkStatus(SdkStatusCode.ERROR))
                with tracer.start_as_current_span("SELECT cart", kind=SpanKind.CLIENT):
                    pass
    before = tempo.get("/api/metrics/query_range", params=params).json()
    assert index.learn(())  # answered from the requests' rows
    index.refresh()
    after = tempo.get("/api/metrics/query_range", params=params).json()
    assert _series_totals(before) == _series_totals(after) == {"checkout": 10, "billing": 10}


def _series_totals(answer: dict[str, Any]) -> dict[str, float]:
    """Spans per service over the hour (each sample a rate per second over 60 s)."""
    return {
        series["labels"][0]["value"]["stringValue"]: round(
            sum(sample["value"] for sample in series["samples"]) * 60
        )
        for series in answer["series"]
    }
