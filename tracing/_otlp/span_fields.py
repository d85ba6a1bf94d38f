"""An ended span's fields, as the encoder reads them: straight from the SDK's span objects when their shape
was checked, else through the public ``ReadableSpan`` properties.

Why: the public properties cost ~50 ns each, and ``events`` / ``links`` / ``attributes`` copy the span's
containers under a lock (~0.5 µs each) only to be iterated once; the encoder reads thirteen fields per span,
which cost about as much as encoding them. The direct path reads ``vars(span)`` of the SDK's
``ReadableSpan``, its ``Span`` and hoptrace's ``HopSpan``, whose fields
:func:`hoptrace.tracing._spans.hop.sdk_shape_checked` compares against the public properties once per
process; any other class (a redaction copy's subclass, a user's own ``ReadableSpan``) is read publicly.
An ended span's fields no longer change, so reading them without the span's lock is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, _Span
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, SpanKind, Status

SpanFields = tuple[
    SpanContext,
    SpanContext | None,
    str,
    SpanKind,
    int,
    int,
    Mapping[str, Any],
    int,
    Sequence[Event],
    int,
    Sequence[Link],
    int,
    Status,
]
"""context, parent, name, kind, start and end times, attributes, dropped attributes, events, dropped
events, links, dropped links, status."""

_EMPTY: Mapping[str, Any] = {}
_direct: tuple[type, ...] | None = None
_no_events: object = None
_no_links: object = None
"""The empty event and link lists hop spans share until their first event or link (read as ``()``: no
``BoundedList.__len__`` call per span)."""


def _direct_classes() -> tuple[type, ...]:
    global _direct, _no_events, _no_links
    if _direct is None:
        from hoptrace.tracing._spans.hop import _NO_EVENTS, _NO_LINKS, HopSpan, sdk_shape_checked

        _no_events, _no_links = _NO_EVENTS, _NO_LINKS
        _direct = (ReadableSpan, _Span, HopSpan) if sdk_shape_checked() else ()
    return _direct


def span_fields(span: ReadableSpan) -> SpanFields:
    """The fields of the ended ``span`` the OTLP encoder writes. Read-only use; never copies."""
    if span.__class__ in (_direct if _direct is not None else _direct_classes()):
        fields = span.__dict__
        attributes = fields["_attributes"]
        events = fields["_events"]
        links = fields["_links"]
        plain: Mapping[str, Any]
        if attributes.__class__ is BoundedAttributes:
            plain, dropped = attributes._dict, attributes.dropped
        else:
            plain, dropped = attributes or _EMPTY, 0
        if events is _no_events:
            events, dropped_events = (), 0
        else:
            dropped_events = events.dropped if events.__class__ is BoundedList else 0
            events = list(events) if len(events) else ()
        if links is _no_links:
            links, dropped_links = (), 0
        else:
            dropped_links = links.dropped if links.__class__ is BoundedList else 0
            links = list(links) if len(links) else ()
        return (
            fields["_context"],
            fields["_parent"],
            fields["_name"],
            fields["_kind"],
            fields["_start_time"] or 0,
            fields["_end_time"] or 0,
            plain,
            dropped,
            events,
            dropped_events,
            links,
            dropped_links,
            fields["_status"],
        )
    context = span.context
    assert context is not None  # an ended SDK span always has one
    return (
        context,
        span.parent,
        span.name,
        span.kind,
        span.start_time or 0,
        span.end_time or 0,
        span.attributes or _EMPTY,
        span.dropped_attributes,
        span.events,
        span.dropped_events,
        span.links,
        span.dropped_links,
        span.status,
    )
