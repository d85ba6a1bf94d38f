"""Fast, feature-detected access to SDK span attributes on the processors' hot path.

Why not only the public API: ``span.attributes`` wraps a ``BoundedAttributes`` whose ``get`` of a missing
key raises and catches ``KeyError`` inside ``Mapping.get`` (~400 ns per lookup here, and RED looks up
two or three mostly-missing keys per span), and ``span.set_attribute`` re-validates the value and takes
two locks (~870 ns). Both dwarf the 15% budget over the bare SDK (see bench/processors_overhead.py).

So, when the SDK is the one these helpers were checked against (detected once, at import, as
:data:`FAST`), they read the underlying dict of an *ended* span (immutable from then on: safe without a
lock), and add an already-validated string attribute to a span *inside on_start* (no other thread has
the span yet) when no span limit would apply. The RED processor also reads an ended span's fields
directly when :data:`FAST` (each property costs ~40 ns; it reads nine, the status code among them).
Otherwise: the public API.
Likewise :func:`baggage_value` reads the baggage entry in one lookup (``get_baggage`` makes four calls),
and :data:`current_context` is the ContextVar's own ``get`` when the default runtime context is in use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

logger = logging.getLogger(__name__)

_EMPTY: Mapping[str, AttributeValue] = {}


def _detect() -> bool:
    try:
        probe = BoundedAttributes(maxlen=None, attributes={"k": "v"}, immutable=False)
        status = Status(StatusCode.OK)
        readable = ReadableSpan(
            name="probe",
            attributes=probe,
            kind=SpanKind.SERVER,
            status=status,
            start_time=1,
            end_time=2,
            resource=Resource.get_empty(),  # the default, Resource.create(), runs detectors (~2 ms)
        )
        fields = (readable._name, readable._kind, readable._status, readable._start_time, readable._end_time)
        empty = len(readable._events) == 0 and len(readable._links) == 0
        return (
            fields == ("probe", SpanKind.SERVER, status, 1, 2)
            and empty
            and readable._resource is readable.resource
            and status._status_code is status.status_code
            and readable._context is readable.context
            and readable._attributes is probe
            and probe._dict == {"k": "v"}
            and probe.maxlen is None
            and probe.max_value_len is None
            and probe._immutable is False
        )
    except Exception:
        return False


FAST = _detect()
"""Whether the fast paths are in use (False: an SDK whose internals differ; the public API is used)."""
if not FAST:
    logger.debug("hoptrace: unfamiliar SDK span internals; processors use the public span API")


def ended_span_attributes(span: ReadableSpan) -> Mapping[str, AttributeValue]:
    """The attributes of an ended span as a plain mapping whose ``get`` is cheap. Read-only use."""
    if FAST:
        raw = span._attributes
        if raw.__class__ is BoundedAttributes:
            return raw._dict
        if raw.__class__ is dict:
            return raw
    return span.attributes or _EMPTY


def frozen_attributes(attributes: object) -> Mapping[str, AttributeValue]:
    """An immutable attribute container (an ended span's, an event's, a link's) as a cheap mapping."""
    if FAST and attributes.__class__ is BoundedAttributes and attributes._immutable:
        return attributes._dict
    return attributes if isinstance(attributes, Mapping) else _EMPTY


def ended_span_has(span: ReadableSpan, what: str) -> bool:
    """Whether an ended span has any ``events`` or ``links``, without copying them into a tuple."""
    if FAST:
        return len(getattr(span, "_" + what)) > 0
    return len(getattr(span, what)) > 0


def add_validated_attribute(span: Span, key: str, value: str) -> None:
    """Set ``key`` to the already-valid ``value`` on a span that is inside ``on_start``.

    Only call this from ``SpanProcessor.on_start``: the fast path relies on no other thread holding the
    span yet. Falls back to ``span.set_attribute`` whenever a span limit could apply.
    """
    if FAST:
        raw = span._attributes
        if raw.__class__ is BoundedAttributes and not raw._immutable:
            attributes = raw._dict
            maxlen = raw.maxlen
            max_value_len = raw.max_value_len
            if (maxlen is None or len(attributes) < maxlen) and (
                max_value_len is None or max_value_len >= len(value)
            ):
                attributes[key] = value
                return
    span.set_attribute(key, value)


def _detect_baggage_key() -> str | None:
    # The context key under which the API stores baggage is private; find it by probing, not by name.
    try:
        probe = baggage.set_baggage("hoptrace.probe", "1", Context())
        keys = [
            key
            for key, value in probe.items()
            if isinstance(value, Mapping) and value == {"hoptrace.probe": "1"}
        ]
        return keys[0] if len(keys) == 1 and baggage.get_baggage("hoptrace.probe", probe) == "1" else None
    except Exception:
        return None


BAGGAGE_KEY = _detect_baggage_key()
"""The context key under which the API keeps baggage (a plain dict), or ``None`` if it could not be found."""


def _detect_current_context() -> Callable[[], Context]:
    # ``get_current()`` is two Python calls deep (~120 ns) before it reaches the ContextVar.get of the
    # default runtime context; call that C method directly when a probe shows it is the one in use.
    try:
        var = getattr(otel_context, "_RUNTIME_CONTEXT", None)
        var = getattr(var, "_current_context", None)
        if not isinstance(var, ContextVar):
            return get_current
        probe = Context()
        token = otel_context.attach(probe)
        try:
            same = var.get() is probe and get_current() is probe
        finally:
            otel_context.detach(token)
        return var.get if same and var.get() is get_current() else get_current
    except Exception:
        return get_current


current_context = _detect_current_context()
"""``opentelemetry.context.get_current``, or the equivalent ``ContextVar.get`` it ends in (faster)."""


def baggage_value(name: str, parent_context: Context | None) -> object | None:
    """``baggage.get_baggage(name, parent_context)``, in one dict lookup when the storage key is known."""
    if BAGGAGE_KEY is None:
        return baggage.get_baggage(name, parent_context)
    entries = (parent_context if parent_context is not None else current_context()).get(BAGGAGE_KEY)
    if entries is None:
        return None
    if entries.__class__ is dict:
        return entries.get(name)
    return baggage.get_baggage(name, parent_context)
