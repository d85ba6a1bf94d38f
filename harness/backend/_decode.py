"""Decode stored OTLP protobuf spans into the shared :class:`hoptrace.harness._model.Span`.

The store keeps spans as serialized protobuf (cheap to ingest, exact to account for); this module turns
them into model objects only when a query needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from hoptrace.harness._model import AttributeValue, Span, SpanEvent, SpanKind, SpanLink, StatusCode

_KINDS = {
    PbSpan.SPAN_KIND_UNSPECIFIED: SpanKind.UNSPECIFIED,
    PbSpan.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    PbSpan.SPAN_KIND_SERVER: SpanKind.SERVER,
    PbSpan.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    PbSpan.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    PbSpan.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}
_STATUSES = {
    PbStatus.STATUS_CODE_UNSET: StatusCode.UNSET,
    PbStatus.STATUS_CODE_OK: StatusCode.OK,
    PbStatus.STATUS_CODE_ERROR: StatusCode.ERROR,
}


def decode_any_value(value: AnyValue) -> AttributeValue:
    """Turn an OTLP ``AnyValue`` into a model attribute value.

    Arrays become tuples of their scalar members; kvlists and bytes, which TraceQL cannot compare, become
    their text form so that they still show up in assertions.
    """
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        members = (decode_any_value(member) for member in value.array_value.values)
        return tuple(member for member in members if not isinstance(member, tuple))
    if which == "bytes_value":
        return value.bytes_value.hex()
    if which == "kvlist_value":
        return str(decode_attributes(value.kvlist_value.values))
    return ""


def decode_attributes(attributes: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    return {attribute.key: decode_any_value(attribute.value) for attribute in attributes}


def decode_span(span: PbSpan, resource_attributes: Mapping[str, AttributeValue], scope_name: str) -> Span:
    """Build the model span from a protobuf span and its (already decoded) resource attributes."""
    service_name = resource_attributes.get("service.name", "")
    return Span(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=span.name,
        kind=_KINDS.get(span.kind, SpanKind.UNSPECIFIED),
        status=_STATUSES.get(span.status.code, StatusCode.UNSET),
        status_message=span.status.message,
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        service_name=service_name if isinstance(service_name, str) else str(service_name),
        attributes=decode_attributes(span.attributes),
        resource_attributes=resource_attributes,
        events=tuple(
            SpanEvent(event.name, event.time_unix_nano, decode_attributes(event.attributes))
            for event in span.events
        ),
        links=tuple(
            SpanLink(link.trace_id.hex(), link.span_id.hex(), decode_attributes(link.attributes))
            for link in span.links
        ),
        scope_name=scope_name,
    )
