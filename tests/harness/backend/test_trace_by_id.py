"""Spans sent by several services over OTLP gRPC and HTTP merge into one trace, served in Tempo's shapes."""

from __future__ import annotations

import base64

import httpx
from opentelemetry import trace
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.trace import SpanKind, Status, StatusCode

from hoptrace.harness import Span
from hoptrace.harness._model import SpanKind as ModelKind
from hoptrace.harness._model import StatusCode as ModelStatus
from hoptrace.harness.backend import EmbeddedBackend

from .conftest import ServiceFactory


def _three_service_trace(service: ServiceFactory) -> str:
    """api (gRPC) -> inventory (HTTP) -> worker (gRPC), worker fails. Returns the trace id in hex."""
    api = service("api", "grpc").get_tracer("api")
    inventory = service("inventory", "http").get_tracer("inventory")
    worker = service("worker", "grpc").get_tracer("worker")
    with (
        api.start_as_current_span(
            "GET /orders", kind=SpanKind.SERVER, attributes={"http.status": 200}
        ) as root,
        api.start_as_current_span("GET inventory", kind=SpanKind.CLIENT),
        inventory.start_as_current_span("GET /stock", kind=SpanKind.SERVER, attributes={"tenant.id": "acme"}),
        worker.start_as_current_span("process", kind=SpanKind.CONSUMER) as failing,
    ):
        failing.set_status(Status(StatusCode.ERROR, "boom"))
    return format(root.get_span_context().trace_id, "032x")


def test_spans_from_three_services_merge_into_one_trace(
    service: ServiceFactory, backend: EmbeddedBackend
) -> None:
    trace_id = _three_service_trace(service)

    spans = backend.store.get_trace(trace_id)

    assert [(s.service_name, s.name, s.kind) for s in spans] == [
        ("api", "GET /orders", ModelKind.SERVER),
        ("api", "GET inventory", ModelKind.CLIENT),
        ("inventory", "GET /stock", ModelKind.SERVER),
        ("worker", "process", ModelKind.CONSUMER),
    ]
    assert all(isinstance(s, Span) and s.trace_id == trace_id for s in spans)
    assert spans[0].parent_span_id is None
    assert [s.parent_span_id for s in spans[1:]] == [s.span_id for s in spans[:-1]]
    assert spans[0].attributes == {"http.status": 200}
    assert spans[2].attributes == {"tenant.id": "acme"}
    assert (spans[3].status, spans[3].status_message) == (ModelStatus.ERROR, "boom")
    assert spans[3].resource_attributes["service.name"] == "worker"
    assert spans[3].scope_name == "worker"


def test_unknown_trace_gives_an_empty_list_in_process(backend: EmbeddedBackend) -> None:
    assert backend.store.get_trace("1" * 32) == []


def _spans_by_name(batches: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for batch in batches:
        for scope_spans in batch["scopeSpans"]:  # type: ignore[attr-defined]
            for span in scope_spans["spans"]:
                found[span["name"]] = span
    return found


def test_trace_by_id_v1_uses_tempos_json_encoding(service: ServiceFactory, tempo: httpx.Client) -> None:
    trace_id = _three_service_trace(service)

    response = tempo.get(f"/api/traces/{trace_id}")

    assert response.status_code == 200
    batches = response.json()["batches"]
    services = {
        attribute["value"]["stringValue"]
        for batch in batches
        for attribute in batch["resource"]["attributes"]
        if attribute["key"] == "service.name"
    }
    assert services == {"api", "inventory", "worker"}
    spans = _spans_by_name(batches)
    root = spans["GET /orders"]
    assert base64.b64decode(root["traceId"]).hex() == trace_id  # type: ignore[arg-type]
    assert len(base64.b64decode(root["spanId"])) == 8  # type: ignore[arg-type]
    assert "parentSpanId" not in root
    assert root["kind"] == "SPAN_KIND_SERVER"
    assert root["status"] == {}
    assert isinstance(root["startTimeUnixNano"], str) and int(root["startTimeUnixNano"]) > 0
    assert root["attributes"] == [{"key": "http.status", "value": {"intValue": "200"}}]
    assert spans["process"]["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
    assert spans["process"]["kind"] == "SPAN_KIND_CONSUMER"
    assert spans["GET /stock"]["parentSpanId"] == spans["GET inventory"]["spanId"]


def test_trace_by_id_v2_wraps_resource_spans_in_trace(service: ServiceFactory, tempo: httpx.Client) -> None:
    trace_id = _three_service_trace(service)

    v1 = tempo.get(f"/api/traces/{trace_id}").json()
    v2 = tempo.get(f"/api/v2/traces/{trace_id}").json()

    assert list(v2) == ["trace"]
    assert v2["trace"]["resourceSpans"] == v1["batches"]


def test_trace_by_id_v2_answers_protobuf_when_grafana_asks(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    trace_id = _three_service_trace(service)

    response = tempo.get(f"/api/v2/traces/{trace_id}", headers={"Accept": "application/protobuf"})

    assert response.status_code == 200
    # TraceByIDResponse{trace=1}: the field 1 payload is a TracesData.
    assert response.content[0] == 0x0A
    trace_bytes = TracesData.FromString(
        tempo.get(f"/api/traces/{trace_id}", headers={"Accept": "application/protobuf"}).content
    )
    wrapped = TracesData()
    wrapped.MergeFromString(response.content[-trace_bytes.ByteSize() :])
    assert wrapped == trace_bytes
    assert sum(len(s.spans) for rs in wrapped.resource_spans for s in rs.scope_spans) == 4


def test_trace_ids_with_leading_zeros_trimmed_or_uppercase_are_found(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    tracer = service("api", "http").get_tracer("t")
    context = trace.SpanContext(0xABC, 0x1, is_remote=True, trace_flags=trace.TraceFlags(1))
    with tracer.start_as_current_span(
        "child", context=trace.set_span_in_context(trace.NonRecordingSpan(context))
    ):
        pass

    assert tempo.get("/api/traces/abc").status_code == 200
    assert tempo.get("/api/v2/traces/" + "0" * 29 + "ABC").status_code == 200


def test_unknown_trace_is_404_and_bad_id_is_400(tempo: httpx.Client) -> None:
    assert tempo.get("/api/traces/" + "ab" * 16).status_code == 404
    assert tempo.get("/api/v2/traces/" + "ab" * 16).status_code == 404
    bad = tempo.get("/api/traces/not-hex")
    assert bad.status_code == 400 and "invalid trace id" in bad.text
    assert tempo.get("/api/v2/traces/" + "a" * 33).status_code == 400


def test_ready_answers_ready(tempo: httpx.Client) -> None:
    response = tempo.get("/ready")
    assert (response.status_code, response.text) == (200, "ready")
