"""Decode stored OTLP protobuf spans into the shared :class:`hoptrace.harness._model.Span`, within bounds.

The store keeps spans as serialized protobuf, exactly as sent (cheap to ingest, exact to account for,
returned verbatim by trace-by-id); this module turns them into model objects only when a query needs
them. Whatever a sender put in a span, the decoded value is bounded, so no query pays more than the
span's own size (see the README's "Limits"):

- a kvlist becomes its JSON text, built once from the nested values (so no escaping compounds across
  levels); values nested deeper than :data:`MAX_VALUE_DEPTH` become ``"..."``;
- strings longer than :data:`MAX_VALUE_CHARS` are cut to that length;
- past :data:`MAX_ATTRIBUTES` attributes, :data:`MAX_ARRAY_MEMBERS` array members, or
  :data:`MAX_EVENTS_OR_LINKS` events or links, the rest is left out.

Each cut is counted (:func:`truncations`, process-wide), once per decoding.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from hoptrace.harness._model import (
    AttributeValue,
    OpaqueText,
    Span,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
)

MAX_VALUE_DEPTH = 8
"""Nesting levels of arrays and kvlists kept in one attribute value."""
MAX_VALUE_CHARS = 16 * 1024
"""Characters kept of one string (or of the hex of a bytes value)."""
MAX_ATTRIBUTES = 1024
"""Attributes kept per span, resource, event, link or kvlist."""
MAX_ARRAY_MEMBERS = 1024
MAX_EVENTS_OR_LINKS = 1024
"""Events, and links, kept per span."""
TRUNCATED = "..."
"""What a value nested too deep becomes."""

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
_truncations = 0
_truncations_lock = threading.Lock()


def truncations() -> int:
    """How many values and lists (attributes, members, events, links) decoding cut, process-wide."""
    return _truncations


def _count_truncation() -> None:
    global _truncations
    with _truncations_lock:
        _truncations += 1


def _bounded(items: Sequence[Any], limit: int) -> Sequence[Any]:
    if len(items) > limit:
        _count_truncation()
        return items[:limit]
    return items


def decoded_text(text: str) -> str:
    """``text`` cut to :data:`MAX_VALUE_CHARS` (and the cut counted)."""
    if len(text) > MAX_VALUE_CHARS:
        _count_truncation()
        return text[:MAX_VALUE_CHARS]
    return text


def decode_any_value(value: AnyValue) -> AttributeValue:
    """Turn an OTLP ``AnyValue`` into a bounded model attribute value.

    Arrays become tuples of their scalar members; bytes become hex and kvlists their JSON text, both as
    :class:`OpaqueText`, which TraceQL cannot compare (as in Tempo) but assertions read.
    """
    which = value.WhichOneof("value")
    if which == "array_value":
        members = (_plain(member, 1) for member in _bounded(value.array_value.values, MAX_ARRAY_MEMBERS))
        return tuple(member for member in members if isinstance(member, str | bool | int | float))
    if which == "kvlist_value":
        return OpaqueText(
            decoded_text(json.dumps(_plain(value, 0), ensure_ascii=False, separators=(",", ":")))
        )
    plain = _plain(value, 0)
    return plain if isinstance(plain, str | bool | int | float) else ""


def _plain(value: AnyValue, depth: int) -> Any:
    """``value`` as plain Python data (str, bool, int, float, list, dict, None), bounded."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return decoded_text(value.string_value)
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "bytes_value":
        return OpaqueText(decoded_text(value.bytes_value[: MAX_VALUE_CHARS // 2 + 1].hex()))
    if which is None:
        return None
    if depth >= MAX_VALUE_DEPTH:
        _count_truncation()
        return TRUNCATED
    if which == "array_value":
        return [_plain(member, depth + 1) for member in _bounded(value.array_value.values, MAX_ARRAY_MEMBERS)]
    return {
        pair.key: _plain(pair.value, depth + 1)
        for pair in _bounded(value.kvlist_value.values, MAX_ATTRIBUTES)
    }


def decode_attributes(attributes: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    """Attributes as a dict (the last of repeated keys wins), at most :data:`MAX_ATTRIBUTES` of them."""
    items = attributes if isinstance(attributes, Sequence) else list(attributes)
    return {attribute.key: decode_any_value(attribute.value) for attribute in _bounded(items, MAX_ATTRIBUTES)}


def decode_span(
    span: PbSpan,
    resource_attributes: Mapping[str, AttributeValue],
    scope: tuple[str, str, Mapping[str, AttributeValue]] = ("", "", {}),
) -> Span:
    """Build the model span from a protobuf span, its (already decoded) resource attributes and its
    instrumentation scope's ``(name, version, attributes)`` (already decoded and bounded, shared by the
    scope's spans)."""
    service_name = resource_attributes.get("service.name", "")
    scope_name, scope_version, scope_attributes = scope
    return Span(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=decoded_text(span.name),
        kind=_KINDS.get(span.kind, SpanKind.UNSPECIFIED),
        status=_STATUSES.get(span.status.code, StatusCode.UNSET),
        status_message=decoded_text(span.status.message),
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        service_name=service_name if isinstance(service_name, str) else str(service_name),
        attributes=decode_attributes(span.attributes),
        resource_attributes=resource_attributes,
        events=tuple(
            SpanEvent(decoded_text(event.name), event.time_unix_nano, decode_attributes(event.attributes))
            for event in _bounded(span.events, MAX_EVENTS_OR_LINKS)
        ),
        links=tuple(
            SpanLink(link.trace_id.hex(), link.span_id.hex(), decode_attributes(link.attributes))
            for link in _bounded(span.links, MAX_EVENTS_OR_LINKS)
        ),
        scope_name=scope_name,
        scope_version=scope_version,
        scope_attributes=scope_attributes,
    )
