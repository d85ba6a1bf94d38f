"""Trace-by-id answers in Tempo's encodings.

Tempo marshals its ``tempopb.Trace`` with gogo jsonpb: ids are base64, enums are names
(``SPAN_KIND_SERVER``), 64-bit integers are strings and zero values are left out. protobuf's own JSON
mapping produces exactly that from the OTLP messages; the one difference patched here is that Tempo
always writes a span's ``status``, as ``{}`` when it is unset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, TracesData

from hoptrace.harness.backend._store import SpanRecord


def traces_data(records: Sequence[SpanRecord]) -> TracesData:
    """Regroup stored spans by resource, then by scope, in arrival order."""
    data = TracesData()
    resources: dict[tuple[bytes, str], ResourceSpans] = {}
    scopes: dict[tuple[bytes, str, bytes, str], ScopeSpans] = {}
    for origin, span in records:
        scope_key = (origin.resource, origin.resource_schema_url, origin.scope, origin.scope_schema_url)
        scope_spans = scopes.get(scope_key)
        if scope_spans is None:
            resource_key = (origin.resource, origin.resource_schema_url)
            resource_spans = resources.get(resource_key)
            if resource_spans is None:
                resource_spans = resources[resource_key] = data.resource_spans.add()
                resource_spans.resource.MergeFromString(origin.resource)
                resource_spans.schema_url = origin.resource_schema_url
            scope_spans = scopes[scope_key] = resource_spans.scope_spans.add()
            scope_spans.scope.MergeFromString(origin.scope)
            scope_spans.schema_url = origin.scope_schema_url
        scope_spans.spans.add().MergeFromString(span)
    return data


def resource_spans_json(records: Sequence[SpanRecord]) -> list[dict[str, Any]]:
    """The ``ResourceSpans`` list as Tempo's JSON writes it (``batches`` in v1, ``resourceSpans`` in v2)."""
    document = json_format.MessageToDict(traces_data(records))
    batches: list[dict[str, Any]] = document.get("resourceSpans", [])
    for batch in batches:
        for scope_spans in batch.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                span.setdefault("status", {})
    return batches


def trace_by_id_v2_protobuf(records: Sequence[SpanRecord]) -> bytes:
    """``tempopb.TraceByIDResponse`` bytes: field 1 holds the ``Trace``, which is wire-identical to
    OTLP's ``TracesData``. Encoded by hand because tempopb is not published for Python."""
    trace: bytes = traces_data(records).SerializeToString()
    return b"\x0a" + _varint(len(trace)) + trace


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
