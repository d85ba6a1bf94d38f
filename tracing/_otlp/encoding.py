"""Encode finished SDK spans straight to the bytes of an OTLP ``ExportTraceServiceRequest``.

Written by hand, and why: the OpenTelemetry exporters first build one protobuf message object per span,
attribute, key/value and status (``opentelemetry-exporter-otlp-proto-common``), then serialise them. Each
of those Python-level constructions costs far more than writing the few bytes it stands for, and it was
the largest single cost of tracing a service (the batch export thread). Protobuf's runtime offers no way
to serialise from plain Python values without building those objects. Spans carry a small, fixed set of
fields, so this module writes them directly in the protobuf wire format, and caches the encodings that
repeat from span to span: the resource, the scope, span names and attribute key/value pairs with
low-cardinality values. The field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto``,
``common/v1/common.proto`` and ``resource/v1/resource.proto``; the tests decode the output with the
official ``opentelemetry-proto`` classes.

What is encoded, as the SDK's own encoder does: every span field (ids, trace state, parent, flags with the
"has is-remote" and "is-remote" bits, name, kind, times, attributes, events, links, status, the three
dropped counts), the resource's attributes and schema URL, the scope's name, version, attributes and schema
URL. Attribute values: str, bool, int (int64; larger values are left out, as the SDK's encoder does),
float, bytes, sequences (arrays) and mappings (key/value lists); ``None`` becomes an empty value. Links
also carry their trace state and W3C trace flags. A value that cannot be encoded is left out of the span,
never raised: the first such omission is logged, all are counted (:data:`left_out`).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from hoptrace.tracing._otlp.span_fields import span_fields

logger = logging.getLogger("hoptrace.tracing")

_CACHE_LIMIT = 4096
"""Entries per encoding cache; a full cache is emptied (it refills with what is current)."""
_CACHED_STRING_LIMIT = 256
"""Attribute string values longer than this are not cached (URLs with ids, messages)."""

# Span.flags bits (trace.proto SpanFlags).
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_pack_fixed32 = struct.Struct("<I").pack
_SMALL_VARINTS = [bytes([n]) for n in range(128)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` is the encoded (field number << 3 | 2)."""
    return tag + _varint(len(payload)) + payload


class _Cache(dict[Any, Any]):
    """A bounded memo: ``get(key)``, then ``put(key, value)`` on a miss; emptied when full (it refills with
    what is current)."""

    def put(self, key: Any, value: Any) -> Any:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[key] = value
        return value


class LeftOut:
    """Counts what the encoder left out (attributes it cannot encode, spans it cannot encode at all); warns
    once, then only counts. Thread-safe enough for counters (the GIL; an off-by-one is harmless)."""

    def __init__(self) -> None:
        self.attributes = 0
        self.spans = 0

    def record(self, what: str, name: str, exc: Exception) -> None:
        first = self.attributes + self.spans == 0
        if what == "span":
            self.spans += 1
        else:
            self.attributes += 1
        if first:
            logger.warning(
                "hoptrace: %s %r left out of the OTLP export (%s); further ones are counted", what, name, exc
            )


left_out = LeftOut()
"""Process-wide counts of what :func:`encode_spans` could not encode."""

_key_values = _Cache()
_blocks = _Cache()
_names = _Cache()
_resources = _Cache()
_scopes = _Cache()


def _any_value(value: Any) -> bytes:
    """The bytes of an ``AnyValue`` message holding ``value``. Raises ``ValueError``/``TypeError``."""
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} does not fit in int64")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if value is None:
        return b""
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(item)) for item in value]))
    if isinstance(value, Mapping):
        pairs = [_field(b"\x0a", _key_value(str(key), item)) for key, item in value.items()]
        return _field(b"\x32", b"".join(pairs))
    raise TypeError(f"cannot encode a {type(value).__name__} attribute value")


def _key_value(key: str, value: Any) -> bytes:
    """The bytes of a ``KeyValue`` message."""
    return _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value))


def _sized(payload: bytes) -> bytes:
    return _varint(len(payload)) + payload


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Each attribute as a ``KeyValue`` field numbered by ``tag`` (a one-byte key); a value that cannot be
    encoded is left out. A whole set of attributes seen before (the same keys, values and value types: a
    route's server spans, a client's calls) comes out of a cache in one lookup."""
    if not attributes:
        return b""
    try:
        # The types are part of the key: True == 1 == 1.0, but they encode differently.
        block_key: tuple[Any, ...] | None = (
            tag,
            tuple(attributes.items()),
            tuple(map(type, attributes.values())),
        )
        block = _blocks.get(block_key)
    except TypeError:  # an unhashable value (a list): encoded attribute by attribute
        block_key = block = None
    if block is not None:
        return block  # type: ignore[no-any-return]
    parts = []
    complete = True
    for key, value in attributes.items():
        kind = type(value)
        try:
            if kind is bool or kind is int or (kind is str and len(value) <= _CACHED_STRING_LIMIT):
                cache_key = (key, kind, value)
                sized = _key_values.get(cache_key)
                if sized is None:
                    sized = _key_values.put(cache_key, _sized(_key_value(key, value)))
            else:
                sized = _sized(_key_value(key, value))
        except (ValueError, TypeError, UnicodeError) as exc:
            left_out.record("attribute", key, exc)
            complete = False
            continue
        parts.append(sized)
    encoded = tag + tag.join(parts) if parts else b""
    if block_key is not None and complete:  # a set with a value left out is counted every time
        _blocks.put(block_key, encoded)
    return encoded


def _trace_state(context: SpanContext) -> str:
    state = context.trace_state
    return ",".join(f"{key}={value}" for key, value in state.items()) if state else ""


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE


_KINDS = {kind: b"\x30" + _SMALL_VARINTS[kind.value + 1] for kind in SpanKind}
_LOCAL_PARENT_FLAGS = b"\x85\x01" + _pack_fixed32(_HAS_IS_REMOTE)
_REMOTE_PARENT_FLAGS = b"\x85\x01" + _pack_fixed32(_HAS_IS_REMOTE | _IS_REMOTE)
_UNSET_STATUS = b"\x7a\x00"


def encode_span(span: ReadableSpan) -> bytes:
    """The bytes of one OTLP ``Span`` message (without its field header)."""
    (
        context,
        parent,
        name,
        kind,
        start,
        end,
        attributes,
        dropped_attributes,
        events,
        dropped_events,
        links,
        dropped_links,
        status,
    ) = span_fields(span)
    encoded_name = _names.get(name)
    if encoded_name is None:
        encoded_name = _names.put(name, _field(b"\x2a", name.encode()))
    # SpanContext is a tuple: its fields read by position cost no property call (a subclass: by name).
    if context.__class__ is SpanContext:
        trace_id, span_id, _remote, _flags, trace_state, _valid = context
    else:
        trace_id, span_id, trace_state = context.trace_id, context.span_id, context.trace_state
    parts = [b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08" + span_id.to_bytes(8, "big")]
    if trace_state:
        parts.append(_field(b"\x1a", _trace_state(context).encode()))
    remote_parent = False
    if parent is not None:
        if parent.__class__ is SpanContext:
            parent_id, remote_parent = parent[1], parent[2]
        else:
            parent_id, remote_parent = parent.span_id, parent.is_remote
        parts.append(b"\x22\x08" + parent_id.to_bytes(8, "big"))
    parts.append(encoded_name)
    parts.append(_KINDS[kind])
    parts.append(b"\x39" + _pack_fixed64(start) + b"\x41" + _pack_fixed64(end))
    parts.append(_attributes(b"\x4a", attributes))
    if dropped_attributes:
        parts.append(b"\x50" + _varint(dropped_attributes))
    if events:
        parts.extend([_field(b"\x5a", _event(event)) for event in events])
    if dropped_events:
        parts.append(b"\x60" + _varint(dropped_events))
    if links:
        parts.extend([_field(b"\x6a", _link(link)) for link in links])
    if dropped_links:
        parts.append(b"\x70" + _varint(dropped_links))
    if status.__class__ is Status:  # its fields, without two property calls
        unset = status._status_code is StatusCode.UNSET and not status._description
    else:
        unset = status.status_code is StatusCode.UNSET and not status.description
    # always a status, as the SDK's encoder does
    parts.append(_UNSET_STATUS if unset else _field(b"\x7a", _status(status)))
    parts.append(_REMOTE_PARENT_FLAGS if remote_parent else _LOCAL_PARENT_FLAGS)
    return b"".join(parts)


def _event(event: Event) -> bytes:
    encoded = b"\x09" + _pack_fixed64(event.timestamp) + _field(b"\x12", event.name.encode())
    encoded += _attributes(b"\x1a", event.attributes)
    if event.dropped_attributes:
        encoded += b"\x20" + _varint(event.dropped_attributes)
    return encoded


def _link(link: Link) -> bytes:
    context = link.context
    encoded = (
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")
    )
    state = _trace_state(context)
    if state:
        encoded += _field(b"\x1a", state.encode())
    encoded += _attributes(b"\x22", link.attributes)
    if link.dropped_attributes:
        encoded += b"\x28" + _varint(link.dropped_attributes)
    return encoded + b"\x35" + _pack_fixed32(_flags(context) | int(context.trace_flags))


def _status(status: Status) -> bytes:
    encoded = _field(b"\x12", status.description.encode()) if status.description else b""
    if status.status_code is not StatusCode.UNSET:
        encoded += b"\x18" + _SMALL_VARINTS[status.status_code.value]
    return encoded


def _resource(resource: Resource) -> bytes:
    """The ``resource`` field of a ``ResourceSpans`` (cached per resource)."""
    return _field(b"\x0a", _attributes(b"\x0a", resource.attributes))


def _scope(scope: InstrumentationScope | None) -> bytes:
    """The ``scope`` field of a ``ScopeSpans``."""
    if scope is None:
        return b"\x0a\x00"
    encoded = _field(b"\x0a", scope.name.encode()) if scope.name else b""
    if scope.version:
        encoded += _field(b"\x12", scope.version.encode())
    encoded += _attributes(b"\x1a", scope.attributes)
    return _field(b"\x0a", encoded)


def _cached(cache: _Cache, thing: Any, encode: Callable[[Any], bytes]) -> bytes:
    """``encode(thing)``, memoised by identity: SDK resources and scopes are immutable and shared by every
    span of a provider or tracer, and hashing a ``Resource`` serialises its attributes to JSON."""
    found = cache.get(id(thing))
    if found is None or found[0] is not thing:
        found = cache.put(id(thing), (thing, encode(thing)))
    encoded: bytes = found[1]
    return encoded


def _schema_url(url: str | None) -> bytes:
    return _field(b"\x1a", url.encode()) if url else b""


def encode_spans(spans: Iterable[ReadableSpan]) -> bytes:
    """The serialised ``ExportTraceServiceRequest`` for ``spans``, grouped by resource, then by scope.

    A span that cannot be encoded at all is left out and counted in :data:`left_out` (as are attributes);
    never raises for a span.
    """
    grouped: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]] = {}
    for span in spans:
        try:
            encoded = encode_span(span)
        except Exception as exc:
            left_out.record("span", span.name, exc)
            continue
        resource, scope = span.resource, span.instrumentation_scope
        by_resource = grouped.get(id(resource))
        if by_resource is None:
            by_resource = grouped[id(resource)] = (resource, {})
        by_scope = by_resource[1].get(id(scope))
        if by_scope is None:
            by_scope = by_resource[1][id(scope)] = (scope, [])
        by_scope[1].append(encoded)
    request = []
    for resource, scopes in grouped.values():
        body = [_cached(_resources, resource, _resource)]
        for scope, encoded_spans in scopes.values():
            spans_fields = b"\x12" + b"\x12".join([_sized(span) for span in encoded_spans])
            schema = _schema_url(scope.schema_url if scope is not None else None)
            body.append(_field(b"\x12", _cached(_scopes, scope, _scope) + spans_fields + schema))
        body.append(_schema_url(resource.schema_url))
        request.append(_field(b"\x0a", b"".join(body)))
    return b"".join(request)
