"""An OTLP export request read in two cheap passes: its spans as the bytes they were sent as, and, per
instrumentation scope, every span's ids, names, kinds, statuses and raw attributes in flat lists.

Reading each span's ids from a message per span and serializing it again to store it cost the receiver
about 9k instructions per span (cachegrind, bench spans); these two passes about 4.3k. Here upb does both
in C, with two message types declared at run time (the field numbers are OTLP's ``trace.proto``):

- :data:`RawRequest` declares a scope's ``spans`` as ``repeated bytes``: each span comes out as the
  bytes it was sent as, ready to store;
- :data:`MergedRequest` declares them as *one* message, so that protobuf merges every span of a scope
  into it and its repeated fields concatenate: ``trace_id``, ``span_id``, ``name``, ``kind``, the start
  and end times, ``attributes`` (raw ``KeyValue`` bytes), ``status`` (raw ``Status`` bytes), and the
  events' and links' names and attributes, as flat lists. That is what the ids of the spans are read
  from (one per span when each span has each id once), what the tag catalogue learns from
  (:mod:`._request_facts`) and what the metrics' rows of unread requests are (:mod:`._pending_rows`).

Neither validates the spans' contents: the receiver parses the request with the real message type
first. Pure functions; thread safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto
_REPEATED, _OPTIONAL = _FIELD.LABEL_REPEATED, _FIELD.LABEL_OPTIONAL
_PACKAGE = "hoptrace.lean_request"
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


def _message(file: Any, name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
    message = file.message_type.add(name=name)
    for field_name, number, kind, label, type_name in fields:
        field = message.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = f".{_PACKAGE}.{type_name}"


def _classes() -> tuple[Any, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="hoptrace/lean_request.proto", package=_PACKAGE, syntax="proto3"
    )
    raw, message, string = _FIELD.TYPE_BYTES, _FIELD.TYPE_MESSAGE, _FIELD.TYPE_STRING
    fixed64, fixed32, uint32 = _FIELD.TYPE_FIXED64, _FIELD.TYPE_FIXED32, _FIELD.TYPE_UINT32
    # Every field of Event, Link and Span is declared (those not read as singular: each span overwrites
    # them), so that none is kept as an unknown field, which costs a copy.
    _message(
        file,
        "Events",
        [
            ("time_unix_nano", 1, fixed64, _OPTIONAL, ""),
            ("name", 2, raw, _REPEATED, ""),
            ("attributes", 3, raw, _REPEATED, ""),
            ("dropped_attributes_count", 4, uint32, _OPTIONAL, ""),
        ],
    )
    _message(
        file,
        "Links",
        [
            ("trace_id", 1, raw, _OPTIONAL, ""),
            ("span_id", 2, raw, _OPTIONAL, ""),
            ("trace_state", 3, raw, _OPTIONAL, ""),
            ("attributes", 4, raw, _REPEATED, ""),
            ("dropped_attributes_count", 5, uint32, _OPTIONAL, ""),
            ("flags", 6, fixed32, _OPTIONAL, ""),
        ],
    )
    _message(
        file,
        "Spans",
        [
            ("trace_id", 1, raw, _REPEATED, ""),
            ("span_id", 2, raw, _REPEATED, ""),
            ("trace_state", 3, raw, _OPTIONAL, ""),
            ("parent_span_id", 4, raw, _OPTIONAL, ""),
            ("name", 5, raw, _REPEATED, ""),
            ("kind", 6, _FIELD.TYPE_INT32, _REPEATED, ""),  # an enum on the wire: a varint
            ("start_time_unix_nano", 7, fixed64, _REPEATED, ""),
            ("end_time_unix_nano", 8, fixed64, _REPEATED, ""),
            ("attributes", 9, raw, _REPEATED, ""),
            ("dropped_attributes_count", 10, uint32, _OPTIONAL, ""),
            ("events", 11, message, _OPTIONAL, "Events"),  # singular: every event merged into one
            ("dropped_events_count", 12, uint32, _OPTIONAL, ""),
            ("links", 13, message, _OPTIONAL, "Links"),
            ("dropped_links_count", 14, uint32, _OPTIONAL, ""),
            ("status", 15, raw, _REPEATED, ""),
            ("flags", 16, fixed32, _OPTIONAL, ""),
        ],
    )
    for prefix, spans in (
        ("Merged", ("spans", 2, message, _OPTIONAL, "Spans")),
        ("Raw", ("spans", 2, raw, _REPEATED, "")),
    ):
        _message(
            file,
            f"{prefix}ScopeSpans",
            [("scope", 1, raw, _OPTIONAL, ""), spans, ("schema_url", 3, string, _OPTIONAL, "")],
        )
        _message(
            file,
            f"{prefix}ResourceSpans",
            [
                ("resource", 1, raw, _OPTIONAL, ""),
                ("scope_spans", 2, message, _REPEATED, f"{prefix}ScopeSpans"),
                ("schema_url", 3, string, _OPTIONAL, ""),
            ],
        )
        _message(
            file, f"{prefix}Request", [("resource_spans", 1, message, _REPEATED, f"{prefix}ResourceSpans")]
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    find = pool.FindMessageTypeByName
    return (
        message_factory.GetMessageClass(find(f"{_PACKAGE}.RawRequest")),
        message_factory.GetMessageClass(find(f"{_PACKAGE}.MergedRequest")),
    )


RawRequest: Any
MergedRequest: Any
RawRequest, MergedRequest = _classes()

OriginKey = tuple[bytes, str, bytes, str]
"""A scope's serialized resource, the resource's schema URL, the serialized scope, its schema URL."""


@dataclass(frozen=True, slots=True)
class ScopeGroup:
    """The spans of one instrumentation scope of a request."""

    origin: OriginKey
    trace_ids: list[bytes]
    span_ids: list[bytes]
    spans: list[bytes]
    """Each span as it was sent (serialized ``opentelemetry.proto.trace.v1.Span``)."""
    merged: Any
    """Every span of the scope merged into one ``Spans`` message (see the module docstring)."""
    names: list[bytes]
    """``merged``'s lists that both the tag catalogue and the metrics' rows read, made once."""
    kinds: list[int]
    statuses: list[bytes]


def scope_groups(body: bytes) -> list[ScopeGroup] | None:
    """The spans of a serialized ``ExportTraceServiceRequest`` by scope, or ``None`` unless every span
    has one 16-byte trace id and one 8-byte span id, neither all zeros (the receiver then reads the
    request span by span, rejecting the invalid ones). ``body`` must have parsed as the request."""
    groups: list[ScopeGroup] = []
    raw, merged = RawRequest.FromString(body), MergedRequest.FromString(body)
    for raw_resource, merged_resource in zip(raw.resource_spans, merged.resource_spans, strict=True):
        resource, resource_schema = raw_resource.resource, raw_resource.schema_url
        for raw_scope, merged_scope in zip(
            raw_resource.scope_spans, merged_resource.scope_spans, strict=True
        ):
            spans = raw_scope.spans[:]
            if not spans:
                continue
            flat = merged_scope.spans
            trace_ids, span_ids = flat.trace_id[:], flat.span_id[:]
            if (
                len(trace_ids) != len(spans)
                or len(span_ids) != len(spans)
                or set(map(len, trace_ids)) != {16}
                or set(map(len, span_ids)) != {8}
                or _ZERO_TRACE_ID in trace_ids
                or _ZERO_SPAN_ID in span_ids
            ):
                return None
            origin = (resource, resource_schema, raw_scope.scope, raw_scope.schema_url)
            groups.append(
                ScopeGroup(
                    origin, trace_ids, span_ids, spans, flat, flat.name[:], flat.kind[:], flat.status[:]
                )
            )
    return groups


def stored_triples(groups: list[ScopeGroup], origins: list[Any]) -> list[tuple[bytes, Any, bytes]]:
    """``(trace_id, origin, span)`` per span, as the store takes them, with each group's interned
    origin."""
    triples: list[tuple[bytes, Any, bytes]] = []
    for group, origin in zip(groups, origins, strict=True):
        triples += zip(group.trace_ids, repeat(origin), group.spans)
    return triples
