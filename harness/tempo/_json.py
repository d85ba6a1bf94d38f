"""Decode Tempo's trace-by-id JSON (and plain OTLP/JSON) into ``hoptrace.harness._model.Span``.

Tempo's ``/api/traces/{id}`` answers ``{"batches": [ResourceSpans]}`` and ``/api/v2/traces/{id}`` answers
``{"trace": {"resourceSpans": [...]}}``. Tempo encodes ids in base64 (gogo jsonpb) while OTLP/JSON uses hex,
kinds and status codes come as names or numbers, and 64-bit integers as strings. This module accepts all of
these spellings so the same assertions run against the embedded backend and real Tempo.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from hoptrace.harness._model import (
    AttributeValue,
    OpaqueText,
    Span,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
)

_KINDS_BY_NUMBER = (
    SpanKind.UNSPECIFIED,
    SpanKind.INTERNAL,
    SpanKind.SERVER,
    SpanKind.CLIENT,
    SpanKind.PRODUCER,
    SpanKind.CONSUMER,
)
_STATUS_BY_NUMBER = (StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR)
_E = TypeVar("_E", SpanKind, StatusCode)
_HEX = frozenset("0123456789abcdefABCDEF")


class TempoJsonError(ValueError):
    """The JSON does not have the shape of a Tempo trace or OTLP/JSON."""


def decode_id(value: object, size: int, *, trimmed_hex: bool = False) -> str | None:
    """Return a span/trace id of ``size`` bytes as lowercase hex, from hex or base64; ``None`` when empty.

    ``trimmed_hex`` accepts hex with leading zeros removed, as Tempo's search API writes trace ids.
    Raises ``TempoJsonError`` when the value is neither.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TempoJsonError(f"id must be a string, got {value!r}")
    if len(value) == 2 * size and set(value) <= _HEX:
        return value.lower()
    if trimmed_hex and set(value) <= _HEX and len(value) < 2 * size:
        # Tempo's search API trims leading zeros from hex trace ids.
        return value.lower().rjust(2 * size, "0")
    try:
        altchars = b"-_" if "-" in value or "_" in value else None
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TempoJsonError(f"id {value!r} is neither hex nor base64") from exc
    if len(raw) != size:
        raise TempoJsonError(f"id {value!r} decodes to {len(raw)} bytes, expected {size}")
    return raw.hex()


def decode_trace(document: Mapping[str, Any]) -> list[Span]:
    """Decode a v1 (``batches``), v2 (``trace.resourceSpans``) or OTLP (``resourceSpans``) document."""
    if "trace" in document and isinstance(document["trace"], Mapping):
        document = document["trace"]
    resource_spans = document.get("resourceSpans", document.get("batches"))
    if resource_spans is None:
        if not document:
            return []
        raise TempoJsonError(f"no 'batches' or 'resourceSpans' in document with keys {sorted(document)}")
    return list(_iter_spans(_list(resource_spans, "resourceSpans")))


def decode_attributes(items: object) -> dict[str, AttributeValue]:
    """Decode an OTLP/JSON ``KeyValue`` list."""
    out: dict[str, AttributeValue] = {}
    for item in _list(items, "attributes"):
        if isinstance(item, Mapping) and "key" in item:
            out[str(item["key"])] = _any_value(item.get("value") or {})
    return out


def _iter_spans(resource_spans: Sequence[Any]) -> Iterator[Span]:
    for rs in resource_spans:
        resource = decode_attributes((rs.get("resource") or {}).get("attributes"))
        service = resource.get("service.name", "")
        scopes = rs.get("scopeSpans", rs.get("instrumentationLibrarySpans", rs.get("scope_spans")))
        for ss in _list(scopes, "scopeSpans"):
            raw_scope = ss.get("scope", ss.get("instrumentationLibrary")) or {}
            scope = (
                str(raw_scope.get("name", "")),
                str(raw_scope.get("version", "")),
                decode_attributes(raw_scope.get("attributes")),
            )
            for raw in _list(ss.get("spans"), "spans"):
                yield _span(raw, resource, str(service), scope)


def _span(
    raw: Mapping[str, Any],
    resource: dict[str, AttributeValue],
    service: str,
    scope: tuple[str, str, dict[str, AttributeValue]],
) -> Span:
    trace_id = decode_id(raw.get("traceId"), 16)
    span_id = decode_id(raw.get("spanId"), 8)
    if trace_id is None or span_id is None:
        raise TempoJsonError(f"span {raw.get('name')!r} lacks traceId or spanId")
    status = raw.get("status") or {}
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=decode_id(raw.get("parentSpanId"), 8),
        name=str(raw.get("name", "")),
        kind=_enum(raw.get("kind"), _KINDS_BY_NUMBER, "SPAN_KIND_", SpanKind.UNSPECIFIED),
        status=_enum(status.get("code"), _STATUS_BY_NUMBER, "STATUS_CODE_", StatusCode.UNSET),
        status_message=str(status.get("message", "")),
        start_time_unix_nano=int(raw.get("startTimeUnixNano", 0)),
        end_time_unix_nano=int(raw.get("endTimeUnixNano", 0)),
        service_name=service,
        attributes=decode_attributes(raw.get("attributes")),
        resource_attributes=resource,
        events=tuple(_event(event) for event in _list(raw.get("events"), "events")),
        links=tuple(_link(link) for link in _list(raw.get("links"), "links")),
        scope_name=scope[0],
        scope_version=scope[1],
        scope_attributes=scope[2],
    )


def _event(raw: Mapping[str, Any]) -> SpanEvent:
    return SpanEvent(
        str(raw.get("name", "")), int(raw.get("timeUnixNano", 0)), decode_attributes(raw.get("attributes"))
    )


def _link(raw: Mapping[str, Any]) -> SpanLink:
    trace_id, span_id = decode_id(raw.get("traceId"), 16), decode_id(raw.get("spanId"), 8)
    if trace_id is None or span_id is None:
        raise TempoJsonError("span link lacks traceId or spanId")
    return SpanLink(trace_id, span_id, decode_attributes(raw.get("attributes")))


def _enum(value: object, by_number: tuple[_E, ...], prefix: str, default: _E) -> _E:
    if value is None or value == "":
        return default
    if isinstance(value, int) and 0 <= value < len(by_number):
        return by_number[value]
    if isinstance(value, str):
        name = value.upper().removeprefix(prefix)
        for member in by_number:
            if str(member).upper() == name:
                return member
    raise TempoJsonError(f"unknown {prefix.lower().rstrip('_')} {value!r}")


def _any_value(value: Mapping[str, Any]) -> AttributeValue:
    """An OTLP/JSON ``AnyValue`` as the embedded backend decodes the same value from protobuf
    (``hoptrace.harness.backend``): bytes as hex, kvlists as their compact JSON text (both as
    ``OpaqueText``, which TraceQL does not compare), arrays as tuples of their scalar members. One
    spelling for both backends keeps an assertion's expected value the same."""
    if "arrayValue" in value:
        items = (value["arrayValue"] or {}).get("values") or []
        return tuple(v for v in (_plain(i) for i in items) if isinstance(v, str | bool | int | float))
    if "kvlistValue" in value:
        return OpaqueText(json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":")))
    plain = _plain(value)
    return plain if isinstance(plain, str | bool | int | float) else ""


def _plain(value: Mapping[str, Any]) -> Any:
    """``value`` as plain Python data (str, bool, int, float, list, dict, None)."""
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])  # OTLP/JSON writes 64-bit integers as strings
    if "doubleValue" in value:
        # protobuf's JSON mapping writes non-finite doubles as "NaN", "Infinity" and "-Infinity"; float()
        # reads all three.
        return float(value["doubleValue"])
    if "bytesValue" in value:
        try:
            return OpaqueText(base64.b64decode(str(value["bytesValue"])).hex())
        except (binascii.Error, ValueError) as exc:
            raise TempoJsonError(f"bytesValue {value['bytesValue']!r} is not base64") from exc
    if "arrayValue" in value:
        return [_plain(item) for item in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        pairs = (value["kvlistValue"] or {}).get("values") or []
        return {str(pair["key"]): _plain(pair.get("value") or {}) for pair in pairs if "key" in pair}
    return None


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TempoJsonError(f"{what} must be a list, got {type(value).__name__}")
    return value
