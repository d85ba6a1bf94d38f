"""Is the installed SDK's span what the hop-span fast path builds? Checked once per process, by building
spans both ways and comparing them field by field (see :mod:`hoptrace.tracing._spans.hop`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, Tracer, TracerProvider, sampling
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanKind, Status
from opentelemetry.util import types


class _Ended(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def shape_problem(
    fast_path: Callable[[Tracer], Any], scope: str, version: str, shared_empties: Mapping[str, object]
) -> str | None:
    """Why ``fast_path`` (:class:`hoptrace.tracing._spans.hop.FastPath`, given by its module so that this
    one needs nothing from it) cannot be trusted with this SDK, or ``None``. ``shared_empties``: the empty
    lists hop spans share until their first event or link, by field name."""
    try:
        ended = _Ended()
        provider = TracerProvider(
            resource=Resource.get_empty(), shutdown_on_exit=False, sampler=sampling.DEFAULT_ON
        )
        provider.add_span_processor(ended)
        tracer = provider.get_tracer(scope, version)
        if type(tracer) is not Tracer:
            return f"the SDK made a {type(tracer).__name__}"
        fast = fast_path(tracer)
        attributes: dict[str, types.AnyValue] = {"probe.text": "x", "probe.count": 1}
        pairs = []
        parent_context = None
        link = [trace.Link(trace.SpanContext(1, 2, True), {"probe.link": 1})]
        for name, kind, links in (("root", SpanKind.SERVER, None), ("child", SpanKind.CLIENT, link)):
            theirs = tracer.start_span(name, parent_context, kind, attributes, links)
            ours = fast.start(name, parent_context, kind, attributes, links, None, True, True)
            if ours is None:
                return "the fast path declined a sampled span"
            pairs.append((theirs, ours))
            parent_context = trace.set_span_in_context(theirs)
        for theirs, ours in pairs:
            problem = _difference(vars(theirs), vars(ours), shared_empties)
            if problem is not None:
                return problem
            for span in (theirs, ours):
                span.set_attribute("probe.status", 200)
                span.add_event("probe.event", {"probe.detail": "d"})
                span.add_link(trace.SpanContext(3, 4, True), {"probe.added": 2})
                span.end()
        if ended.spans[1] is not pairs[0][1] or ended.spans[3] is not pairs[1][1]:
            return "an ended hop span did not reach the processors"
        for theirs_ended, ours_ended in zip(ended.spans[0::2], ended.spans[1::2], strict=True):
            problem = _ended_difference(theirs_ended, ours_ended, shared_empties)
            if problem is not None:
                return problem
    except Exception as exc:
        return f"probing the SDK failed: {exc!r}"
    return None


_READ_DIRECTLY = {
    "_name": "name",
    "_context": "context",
    "_parent": "parent",
    "_kind": "kind",
    "_start_time": "start_time",
    "_end_time": "end_time",
    "_status": "status",
    "_resource": "resource",
    "_instrumentation_scope": "instrumentation_scope",
}
"""Fields of an ended span that hoptrace reads directly (the OTLP encoder), and their public property."""


def _ended_difference(
    theirs: ReadableSpan, ours: ReadableSpan, shared_empties: Mapping[str, object]
) -> str | None:
    """How an ended hop span differs from the SDK's ended copy of the same span, or ``None``; also checks
    that both hold, under the fields hoptrace reads directly, what their public properties return."""
    for span in (theirs, ours):
        fields = vars(span)
        for field, public in _READ_DIRECTLY.items():
            if fields.get(field) is not getattr(span, public):
                return f"{type(span).__name__}.{field} is not its {public}"
        if (fields["_attributes"]._dict, list(fields["_events"]), list(fields["_links"])) != (
            dict(span.attributes or {}),
            list(span.events),
            list(span.links),
        ):
            return f"{type(span).__name__}'s attributes, events or links are not its public ones"
    if dict(theirs.attributes or {}) != dict(ours.attributes or {}):
        return "attributes set during the span differ"
    for field in ("_events", "_links"):
        expected, got = vars(theirs)[field], vars(ours)[field]
        if type(got) is not type(expected) or got is shared_empties.get(field):
            return f"{field} added during a hop span did not land in its own list"
        if (vars(expected)["_dq"].maxlen, expected.dropped, _items(expected)) != (
            vars(got)["_dq"].maxlen,
            got.dropped,
            _items(got),
        ):
            return f"{field} added during the span differ"
    if vars(vars(ours)["_attributes"])["_immutable"] is not True:
        return "an ended hop span's attributes stay mutable"
    return None


def _difference(
    theirs: dict[str, Any], ours: dict[str, Any], shared_empties: Mapping[str, object]
) -> str | None:
    """How a span's fields (``vars``) built by the fast path differ from the SDK's, or ``None``."""
    if theirs.keys() != ours.keys():
        return f"the SDK's Span has other fields ({sorted(theirs.keys() ^ ours.keys())})"
    for key, expected in theirs.items():
        got = ours[key]
        if type(got) is not type(expected):
            return f"Span.{key} is a {type(expected).__name__}"
        if key == "_context":  # ids are random; a child's trace id is its parent's
            same = expected[2:] == got[2:] and (
                theirs["_parent"] is None or expected.trace_id == got.trace_id
            )
        elif isinstance(expected, BoundedAttributes):
            same = vars(expected).keys() == vars(got).keys() and all(
                getattr(expected, name) == getattr(got, name)
                for name in ("_dict", "maxlen", "max_value_len", "dropped", "_immutable")
            )
        elif isinstance(expected, BoundedList) and got is shared_empties.get(key):
            same = len(expected) == 0  # the span gets its own list with its first item
        elif isinstance(expected, BoundedList):
            same = (
                vars(expected).keys() == vars(got).keys()
                and list(expected) == list(got)
                and vars(expected)["_dq"].maxlen == vars(got)["_dq"].maxlen
            )
        elif isinstance(expected, Status):
            same = (expected.status_code, expected.description) == (got.status_code, got.description)
        elif key in ("_start_time", "_lock"):
            same = True  # the type is what matters
        else:
            same = expected is got or expected == got
        if not same:
            return f"Span.{key} differs"
    return None


def _items(items: BoundedList[Any]) -> list[tuple[object, ...]]:
    """An event or link list's contents, comparable across two spans."""
    return [
        (getattr(item, "name", None), getattr(item, "context", None), dict(item.attributes or {}))
        for item in items
    ]
