"""OTLP/HTTP with JSON bodies (hex ids, as the OTLP spec says) and gzip."""

from __future__ import annotations

import gzip
import json

import httpx

from hoptrace.harness._model import SpanKind, StatusCode
from hoptrace.harness.backend import EmbeddedBackend

TRACE_ID = "5b8efff798038103d269b633813fc60c"


def _json_request(*span_ids: str) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": span_id,
                                "name": f"op-{span_id}",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [{"key": "retries", "value": {"intValue": "3"}}],
                                "status": {"code": "STATUS_CODE_ERROR", "message": "nope"},
                                "unknownFieldFromTheFuture": True,
                            }
                            for span_id in span_ids
                        ],
                    }
                ],
            }
        ]
    }


def test_json_request_with_hex_ids_is_stored(otlp_http: httpx.Client, backend: EmbeddedBackend) -> None:
    response = otlp_http.post("/v1/traces", json=_json_request("eee19b7ec3c1b174"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    (span,) = backend.store.get_trace(TRACE_ID)
    assert (span.span_id, span.name, span.kind, span.service_name) == (
        "eee19b7ec3c1b174",
        "op-eee19b7ec3c1b174",
        SpanKind.SERVER,
        "json-svc",
    )
    assert (span.status, span.status_message, span.attributes) == (StatusCode.ERROR, "nope", {"retries": 3})
    assert span.duration_nano == 250_000_000


def test_gzip_json_request_is_stored(otlp_http: httpx.Client, backend: EmbeddedBackend) -> None:
    body = gzip.compress(json.dumps(_json_request("0000000000000001")).encode())

    response = otlp_http.post(
        "/v1/traces", content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )

    assert response.status_code == 200
    assert [s.span_id for s in backend.store.get_trace(TRACE_ID)] == ["0000000000000001"]


def test_spans_with_invalid_ids_are_reported_through_partial_success(
    otlp_http: httpx.Client, backend: EmbeddedBackend
) -> None:
    response = otlp_http.post(
        "/v1/traces", json=_json_request("0000000000000002", "0000000000000000", "abcd")
    )

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "span_id" in partial["errorMessage"]
    assert [s.span_id for s in backend.store.get_trace(TRACE_ID)] == ["0000000000000002"]
    assert backend.receiver.counters().spans_rejected == 2
