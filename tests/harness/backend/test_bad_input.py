"""Bad OTLP input gets the specification's answer, and the backend keeps serving."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc.code_pb2 import INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from hoptrace.harness.backend import EmbeddedBackend, StoreLimits

PROTOBUF = {"Content-Type": "application/x-protobuf"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def request(trace_byte: int = 1, spans: int = 1, name: str = "op") -> bytes:
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "svc"
    scope_spans = resource_spans.scope_spans.add()
    for index in range(spans):
        span = scope_spans.spans.add(
            trace_id=bytes([trace_byte]) * 16, span_id=(index + 1).to_bytes(8, "big")
        )
        span.name = name
    data: bytes = message.SerializeToString()
    return data


def _status(response: httpx.Response) -> Status:
    return Status.FromString(response.content)


def _still_serving(otlp_http: httpx.Client, backend: EmbeddedBackend) -> None:
    assert otlp_http.post("/v1/traces", content=request(0x42), headers=PROTOBUF).status_code == 200
    assert len(backend.store.get_trace("42" * 16)) == 1


@pytest.fixture
def grpc_export(backend: EmbeddedBackend) -> Iterator[grpc.UnaryUnaryMultiCallable]:
    with grpc.insecure_channel(backend.otlp_grpc_endpoint.removeprefix("http://")) as channel:
        yield channel.unary_unary(EXPORT)


def test_malformed_protobuf_is_400_invalid_argument(
    otlp_http: httpx.Client, backend: EmbeddedBackend
) -> None:
    response = otlp_http.post("/v1/traces", content=b"\xff\xff\xff\xff not protobuf", headers=PROTOBUF)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    status = _status(response)
    assert status.code == INVALID_ARGUMENT and "not a protobuf" in status.message
    _still_serving(otlp_http, backend)


def test_truncated_protobuf_is_400(otlp_http: httpx.Client, backend: EmbeddedBackend) -> None:
    body = request(spans=3)

    response = otlp_http.post("/v1/traces", content=body[:-7], headers=PROTOBUF)

    assert response.status_code == 400
    assert backend.store.get_trace("01" * 16) == []
    _still_serving(otlp_http, backend)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
        b'{"resourceSpans": "nope"}',
        b"\xff\xfe",
    ],
)
def test_malformed_json_is_400_with_a_json_status(
    otlp_http: httpx.Client, backend: EmbeddedBackend, body: bytes
) -> None:
    response = otlp_http.post("/v1/traces", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == INVALID_ARGUMENT
    assert response.json()["message"]
    _still_serving(otlp_http, backend)


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(request())[:-12]])
def test_bad_or_truncated_gzip_is_400(otlp_http: httpx.Client, backend: EmbeddedBackend, body: bytes) -> None:
    response = otlp_http.post("/v1/traces", content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert "gzip" in _status(response).message
    _still_serving(otlp_http, backend)


def test_gzip_protobuf_is_accepted(otlp_http: httpx.Client, backend: EmbeddedBackend) -> None:
    response = otlp_http.post(
        "/v1/traces", content=gzip.compress(request(7)), headers={**PROTOBUF, "Content-Encoding": "gzip"}
    )

    assert response.status_code == 200
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    assert len(backend.store.get_trace("07" * 16)) == 1


def test_unsupported_content_type_encoding_and_method(
    otlp_http: httpx.Client, backend: EmbeddedBackend
) -> None:
    assert (
        otlp_http.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    )
    assert (
        otlp_http.post("/v1/traces", content=b"x", headers={**PROTOBUF, "Content-Encoding": "br"}).status_code
        == 400
    )
    assert otlp_http.get("/v1/traces").status_code == 405
    assert otlp_http.post("/v1/metrics", content=b"", headers=PROTOBUF).status_code == 404
    _still_serving(otlp_http, backend)


@pytest.fixture
def small_backend() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend(max_request_bytes=4096) as running:
        yield running


def test_oversized_requests_are_413_resource_exhausted(small_backend: EmbeddedBackend) -> None:
    with httpx.Client(base_url=small_backend.otlp_http_endpoint) as client:
        big = request(spans=200)
        assert len(big) > 4096
        response = client.post("/v1/traces", content=big, headers=PROTOBUF)
        assert response.status_code == 413
        assert _status(response).code == RESOURCE_EXHAUSTED

        bomb = gzip.compress(request(spans=200, name="x" * 1000))
        assert len(bomb) < 4096
        response = client.post("/v1/traces", content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert response.status_code == 413
        assert "decompressed" in _status(response).message

        assert client.post("/v1/traces", content=request(), headers=PROTOBUF).status_code == 200
    with grpc.insecure_channel(small_backend.otlp_grpc_endpoint.removeprefix("http://")) as channel:
        export = channel.unary_unary(EXPORT)
        with pytest.raises(grpc.RpcError) as caught:
            export(big, timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert export(request(5), timeout=10) == b""
    assert small_backend.receiver.counters().requests_too_large == 2


def test_grpc_malformed_request_is_invalid_argument(
    grpc_export: grpc.UnaryUnaryMultiCallable, backend: EmbeddedBackend
) -> None:
    for body in (b"\xff\xff\xff garbage", request(spans=2)[:-5]):
        with pytest.raises(grpc.RpcError) as caught:
            grpc_export(body, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_export(request(9), timeout=10) == b""
    assert len(backend.store.get_trace("09" * 16)) == 1


def test_grpc_partial_success_reports_rejected_spans(
    grpc_export: grpc.UnaryUnaryMultiCallable, backend: EmbeddedBackend
) -> None:
    message = ExportTraceServiceRequest.FromString(request(3, spans=2))
    message.resource_spans[0].scope_spans[0].spans.add(trace_id=b"\x00" * 16, span_id=b"\x01" * 8)
    message.resource_spans[0].scope_spans[0].spans.add(trace_id=b"\x03" * 15, span_id=b"\x01" * 8)

    response = ExportTraceServiceResponse.FromString(grpc_export(message.SerializeToString(), timeout=10))

    assert response.partial_success.rejected_spans == 2
    assert "trace_id" in response.partial_success.error_message
    assert len(backend.store.get_trace("03" * 16)) == 2


@pytest.fixture
def full_backend() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend(limits=StoreLimits(max_spans=3, min_retention_seconds=3600)) as running:
        yield running


def test_full_store_answers_503_retry_after_and_unavailable(full_backend: EmbeddedBackend) -> None:
    with httpx.Client(base_url=full_backend.otlp_http_endpoint) as client:
        assert client.post("/v1/traces", content=request(1, spans=3), headers=PROTOBUF).status_code == 200

        response = client.post("/v1/traces", content=request(2), headers=PROTOBUF)

        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        assert _status(response).code == UNAVAILABLE
        too_big = client.post("/v1/traces", content=request(4, spans=4), headers=PROTOBUF)
        assert too_big.status_code == 413
    with (
        grpc.insecure_channel(full_backend.otlp_grpc_endpoint.removeprefix("http://")) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        channel.unary_unary(EXPORT)(request(2), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(caught.value.trailing_metadata())
    assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds >= 1
    details = Status.FromString(trailers["grpc-status-details-bin"])
    assert details.code == UNAVAILABLE and details.details[0].Is(RetryInfo.DESCRIPTOR)
    # Nothing was dropped silently: the stored trace is intact and the refusals are counted.
    assert len(full_backend.store.get_trace("01" * 16)) == 3
    counters = full_backend.receiver.counters()
    assert (counters.requests_store_full, counters.spans_refused) == (2, 6)


def test_oldest_traces_are_evicted_and_counted() -> None:
    limits = StoreLimits(max_spans=4, min_retention_seconds=0)
    with (
        EmbeddedBackend(limits=limits) as backend,
        httpx.Client(base_url=backend.otlp_http_endpoint) as client,
    ):
        for trace_byte in (1, 2, 3):
            assert (
                client.post("/v1/traces", content=request(trace_byte, spans=2), headers=PROTOBUF).status_code
                == 200
            )

        assert backend.store.get_trace("01" * 16) == []
        assert len(backend.store.get_trace("02" * 16)) == 2
        assert len(backend.store.get_trace("03" * 16)) == 2
        stats = backend.store.stats()
        assert (stats.spans, stats.traces, stats.evicted_spans, stats.evicted_traces) == (4, 2, 2, 1)
        metrics = httpx.get(f"{backend.http_url}/metrics").text
        assert "hoptrace_backend_spans_evicted_total 2.0" in metrics
        assert "hoptrace_backend_traces_evicted_total 1.0" in metrics


def test_byte_budget_bounds_the_store() -> None:
    one_span = len(request(1, name="x" * 500))
    limits = StoreLimits(max_bytes=3 * (one_span + 100), min_retention_seconds=0)
    with (
        EmbeddedBackend(limits=limits) as backend,
        httpx.Client(base_url=backend.otlp_http_endpoint) as client,
    ):
        for trace_byte in range(1, 11):
            body = request(trace_byte, name="x" * 500)
            assert client.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
        stats = backend.store.stats()
        assert stats.bytes <= limits.max_bytes
        assert stats.traces + stats.evicted_traces == 10
        assert stats.evicted_traces >= 7


def test_random_bytes_never_break_the_receivers(otlp_http: httpx.Client, backend: EmbeddedBackend) -> None:
    for size in (0, 1, 7, 64, 4096):
        body = os.urandom(size)
        response = otlp_http.post("/v1/traces", content=body, headers=PROTOBUF)
        assert response.status_code in (200, 400)
    _still_serving(otlp_http, backend)
