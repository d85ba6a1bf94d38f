"""OTLP/JSON request decoding.

OTLP/JSON is protobuf's JSON mapping with one deviation: trace and span ids are hex, not base64
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). protobuf's ``json_format`` does the
rest; this module only rewrites the id fields before handing the document to it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hoptrace.harness.backend._errors import InvalidPayload

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def parse_json_request(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/JSON ``ExportTraceServiceRequest``; unknown fields are ignored as the spec asks.

    Raises :class:`InvalidPayload` saying what is wrong.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload(f"request body is not JSON: {exc}") from exc
    except RecursionError:
        # json's C scanner counts its nesting against the interpreter's recursion limit: a document
        # nested deeper is refused here instead of recursing further.
        raise InvalidPayload("request body is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidPayload("an OTLP/JSON request must be a JSON object with 'resourceSpans'")
    for resource_spans in _members(document, "resourceSpans", "resource_spans"):
        for scope_spans in _members(resource_spans, "scopeSpans", "scope_spans"):
            for span in _members(scope_spans, "spans"):
                _rewrite_ids(span)
                for link in _members(span, "links"):
                    _rewrite_ids(link)
    try:
        request: ExportTraceServiceRequest = json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidPayload(f"request is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from exc
    return request


def _members(container: Any, *names: str) -> list[Any]:
    if not isinstance(container, dict):
        return []
    for name in names:
        value = container.get(name)
        if isinstance(value, list):
            return value
    return []


def _rewrite_ids(message: Any) -> None:
    if not isinstance(message, dict):
        return
    for field in _ID_FIELDS:
        value = message.get(field)
        if isinstance(value, str) and value:
            try:
                raw = bytes.fromhex(value)
            except ValueError as exc:
                raise InvalidPayload(f"{field} {value!r} is not hex, as OTLP/JSON requires") from exc
            message[field] = base64.b64encode(raw).decode("ascii")


def json_to_protobuf(body: bytes) -> bytes:
    """An OTLP/JSON request re-encoded as a binary ``ExportTraceServiceRequest``.

    Parsing the result again with upb applies the same nesting limit as binary requests have, so a
    stored span always decodes. Raises :class:`InvalidPayload`. Pure: safe to run in another process.
    """
    data: bytes = parse_json_request(body).SerializeToString()
    try:
        ExportTraceServiceRequest.FromString(data)
    except DecodeError as exc:
        raise InvalidPayload(f"request is nested too deeply: {exc}") from exc
    return data
