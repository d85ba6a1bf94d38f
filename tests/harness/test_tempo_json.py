"""Decoding Tempo's trace-by-id JSON: base64 and hex ids, v1 and v2 shapes, names or numbers for enums."""

from __future__ import annotations

import base64
import math

import pytest
from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from hoptrace.harness._model import SpanKind, StatusCode
from hoptrace.harness.backend._decode import decode_attributes as backend_decode_attributes
from hoptrace.harness.tempo._json import TempoJsonError, decode_attributes, decode_id, decode_trace

TRACE_HEX = "0af7651916cd43dd8448eb211c80319c"
SPAN_HEX = "b7ad6b7169203331"


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def tempo_span(**overrides: object) -> dict[str, object]:
    span: dict[str, object] = {
        "traceId": b64(TRACE_HEX),
        "spanId": b64(SPAN_HEX),
        "parentSpanId": "",
        "name": "POST /orders",
        "kind": "SPAN_KIND_SERVER",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000012000000",
        "attributes": [
            {"key": "tenant.id", "value": {"stringValue": "acme"}},
            {"key": "http.response.status_code", "value": {"intValue": "500"}},
            {"key": "retry", "value": {"boolValue": True}},
            {"key": "ratio", "value": {"doubleValue": 0.5}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}}},
        ],
        "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
        "events": [{"timeUnixNano": "1700000000001000000", "name": "exception", "attributes": []}],
        "links": [{"traceId": b64("1" * 32), "spanId": b64("2" * 16)}],
    }
    span.update(overrides)
    return span


def resource_spans(*spans: dict[str, object], key: str = "scopeSpans") -> dict[str, object]:
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        key: [
            {
                "scope": {
                    "name": "tests",
                    "version": "1.2.3",
                    "attributes": [{"key": "library.team", "value": {"stringValue": "core"}}],
                },
                "spans": list(spans),
            }
        ],
    }


def test_v2_document_with_base64_ids_decodes_every_field() -> None:
    [span] = decode_trace({"trace": {"resourceSpans": [resource_spans(tempo_span())]}})
    assert (span.trace_id, span.span_id, span.parent_span_id) == (TRACE_HEX, SPAN_HEX, None)
    assert (span.service_name, span.kind, span.status, span.status_message) == (
        "api",
        SpanKind.SERVER,
        StatusCode.ERROR,
        "boom",
    )
    assert span.duration_nano == 12_000_000
    assert span.attributes == {
        "tenant.id": "acme",
        "http.response.status_code": 500,
        "retry": True,
        "ratio": 0.5,
        "tags": ("a", 2),
    }
    assert span.events[0].name == "exception"
    assert (span.links[0].trace_id, span.links[0].span_id) == ("1" * 32, "2" * 16)
    assert (span.scope_name, span.scope_version, span.scope_attributes) == (
        "tests",
        "1.2.3",
        {"library.team": "core"},
    )


def test_v1_batches_with_hex_ids_and_numeric_enums_decode() -> None:
    raw = tempo_span(traceId=TRACE_HEX, spanId=SPAN_HEX, parentSpanId="00f067aa0ba902b7", kind=4, status={})
    [span] = decode_trace({"batches": [resource_spans(raw, key="instrumentationLibrarySpans")]})
    assert (span.trace_id, span.parent_span_id, span.kind, span.status) == (
        TRACE_HEX,
        "00f067aa0ba902b7",
        SpanKind.PRODUCER,
        StatusCode.UNSET,
    )


def test_ids_decode_from_hex_base64_urlsafe_and_trimmed_search_form() -> None:
    assert decode_id(TRACE_HEX.upper(), 16) == TRACE_HEX
    assert decode_id(b64(TRACE_HEX), 16) == TRACE_HEX
    assert decode_id(b64(TRACE_HEX).rstrip("="), 16) == TRACE_HEX
    assert (
        decode_id("f67651916cd43dd8448eb211c80319c", 16, trimmed_hex=True)
        == "0f67651916cd43dd8448eb211c80319c"
    )
    assert decode_id("", 8) is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"batches": "nope"}, "must be a list"),
        ({"something": []}, "no 'batches' or 'resourceSpans'"),
        ({"batches": [resource_spans(tempo_span(spanId="!!"))]}, "neither hex nor base64"),
        ({"batches": [resource_spans(tempo_span(kind="SPAN_KIND_SIDEWAYS"))]}, "unknown span_kind"),
        ({"batches": [resource_spans(tempo_span(traceId=b64("ab")))]}, "expected 16"),
    ],
)
def test_malformed_documents_raise_a_clear_error(document: dict[str, object], message: str) -> None:
    with pytest.raises(TempoJsonError, match=message):
        decode_trace(document)


def test_empty_document_is_an_empty_trace() -> None:
    assert decode_trace({}) == []


def test_every_attribute_type_decodes_as_the_embedded_backend_decodes_it() -> None:
    """An assertion's expected value must not depend on the backend: the same OTLP attributes, read from
    Tempo's JSON (protobuf's own JSON mapping) and by the embedded backend from protobuf, are equal."""
    attributes = [
        KeyValue(key="text", value=AnyValue(string_value="héllo")),
        KeyValue(key="count", value=AnyValue(int_value=-(2**62))),
        KeyValue(key="ratio", value=AnyValue(double_value=0.25)),
        KeyValue(key="nan", value=AnyValue(double_value=math.nan)),
        KeyValue(key="inf", value=AnyValue(double_value=-math.inf)),
        KeyValue(key="flag", value=AnyValue(bool_value=True)),
        KeyValue(key="blob", value=AnyValue(bytes_value=b"\x00\xffhoptrace")),
        KeyValue(
            key="mixed",
            value=AnyValue(
                array_value=ArrayValue(
                    values=[
                        AnyValue(string_value="a"),
                        AnyValue(int_value=2),
                        AnyValue(array_value=ArrayValue()),
                    ]
                )
            ),
        ),
        KeyValue(
            key="nested",
            value=AnyValue(
                kvlist_value=KeyValueList(
                    values=[
                        KeyValue(key="b", value=AnyValue(bytes_value=b"\x01")),
                        KeyValue(
                            key="l",
                            value=AnyValue(array_value=ArrayValue(values=[AnyValue(bool_value=False)])),
                        ),
                        KeyValue(key="n", value=AnyValue()),
                    ]
                )
            ),
        ),
    ]
    from_json = decode_attributes(json_format.MessageToDict(PbSpan(attributes=attributes))["attributes"])
    from_protobuf = backend_decode_attributes(attributes)

    assert math.isnan(from_json.pop("nan")) and math.isnan(from_protobuf.pop("nan"))  # type: ignore[arg-type]
    assert from_json == from_protobuf
    assert from_json["blob"] == "00ff686f707472616365"
    assert from_json["nested"] == '{"b":"01","l":[false],"n":null}'
    assert from_json["mixed"] == ("a", 2)
