"""What the trace index reads of a stored span, parsed without building attribute messages.

:data:`LeanSpan` parses a serialized ``opentelemetry.proto.trace.v1.Span`` keeping only its span and
parent ids, name, kind, start and end times, status code, each attribute as its raw serialized
``KeyValue`` (bytes), and its events' names and attributes and its links' attributes (raw too). Spans
repeat the same few attributes, so the index keys what it learns of an attribute by those bytes
(``_attribute_facts``) and decodes each distinct one once, instead of building a message per attribute of
every span; other fields are skipped unread.

:data:`LeanAttributes` reads the attributes of a run of serialized span fields (see ``_span_scan``).

The field numbers are the OTLP wire format's (``trace.proto``); the message is declared at run time with
protobuf's descriptor API, so that no generated module has to be kept in step.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto


def _lean_classes() -> tuple[Any, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="hoptrace/lean_span.proto", package="hoptrace.lean", syntax="proto3"
    )
    status = file.message_type.add(name="Status")
    status.field.add(name="code", number=3, type=_FIELD.TYPE_INT32, label=_FIELD.LABEL_OPTIONAL)
    span = file.message_type.add(name="Span")
    for name, number, kind in (
        ("span_id", 2, _FIELD.TYPE_BYTES),
        ("parent_span_id", 4, _FIELD.TYPE_BYTES),
        ("name", 5, _FIELD.TYPE_STRING),
        ("kind", 6, _FIELD.TYPE_INT32),  # an enum on the wire: a varint, as int32 is
        ("start_time_unix_nano", 7, _FIELD.TYPE_FIXED64),
        ("end_time_unix_nano", 8, _FIELD.TYPE_FIXED64),
    ):
        span.field.add(name=name, number=number, type=kind, label=_FIELD.LABEL_OPTIONAL)
    span.field.add(name="attributes", number=9, type=_FIELD.TYPE_BYTES, label=_FIELD.LABEL_REPEATED)
    event = file.message_type.add(name="Event")
    event.field.add(name="name", number=2, type=_FIELD.TYPE_STRING, label=_FIELD.LABEL_OPTIONAL)
    event.field.add(name="attributes", number=3, type=_FIELD.TYPE_BYTES, label=_FIELD.LABEL_REPEATED)
    link = file.message_type.add(name="Link")
    link.field.add(name="attributes", number=4, type=_FIELD.TYPE_BYTES, label=_FIELD.LABEL_REPEATED)
    for name, number, type_name in (("events", 11, "Event"), ("links", 13, "Link")):
        span.field.add(
            name=name,
            number=number,
            type=_FIELD.TYPE_MESSAGE,
            type_name=f".hoptrace.lean.{type_name}",
            label=_FIELD.LABEL_REPEATED,
        )
    span.field.add(
        name="status",
        number=15,
        type=_FIELD.TYPE_MESSAGE,
        type_name=".hoptrace.lean.Status",
        label=_FIELD.LABEL_OPTIONAL,
    )
    attributes = file.message_type.add(name="Attributes")
    attributes.field.add(name="attributes", number=9, type=_FIELD.TYPE_BYTES, label=_FIELD.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    find = pool.FindMessageTypeByName
    return (
        message_factory.GetMessageClass(find("hoptrace.lean.Span")),
        message_factory.GetMessageClass(find("hoptrace.lean.Attributes")),
    )


LeanSpan: Any
"""``LeanSpan.FromString(serialized_span)``: see the module docstring."""
LeanAttributes: Any
"""``LeanAttributes.FromString(serialized_span_fields).attributes``: see the module docstring."""
LeanSpan, LeanAttributes = _lean_classes()
