"""Hop spans: the SDK's own spans, started and ended without the SDK's per-span waste.

Why: in a traced service, the OpenTelemetry SDK's span machinery was about half of hoptrace's tracing cost
(profiles of the demo services under load). Per span, ``Tracer.start_span`` runs the sampler through three
calls, the id generator through two, builds ``BoundedAttributes`` by re-validating every attribute
(~1.5 µs each), creates two ``BoundedList`` s and three locks, then ``Span.end`` copies the span into a new
``ReadableSpan`` for the processors. The attributes of a hop are plain strings and integers that hoptrace
builds itself; the default sampler's decision is two flag tests; and an ended span never changes.

So :class:`HopTracer`, the tracer of hoptrace's hop instrumentation, starts a :class:`HopSpan` (a subclass
of the SDK's span class: every processor and exporter sees the same object and the same fields) directly:

- the sampling decision of ``parentbased_always_on`` (the default) and ``always_on`` is made inline, with
  the same result (a parent's trace state, the ``sampled`` and ``random-trace-id`` flags); any other
  sampler, or a parent that is not sampled, take the SDK's own ``start_span``;
- ids come from ``random.getrandbits`` as the SDK's ``RandomIdGenerator`` draws them (another generator is
  called as usual);
- attributes whose values are ``str``/``int``/``float``/``bool`` and fit the span limits go into the
  ``BoundedAttributes`` as they are (anything else is validated by the SDK);
- a span gets its own event and link lists with its first event or link (most hop spans have none);
- ``end`` hands the processors the span itself, not a copy: after ``end``, a span's name, status,
  attributes, events and links can no longer change (the SDK refuses every mutation of an ended span).

Everything else is the SDK's: the ``TracerProvider``, its span limits, resource, scope, tracer
configuration, and its span processors, so ``provider.add_span_processor(...)`` keeps working and users'
processors and exporters receive SDK ``ReadableSpan`` s. This relies on SDK internals (the fields of
``Span``, ``BoundedAttributes`` and ``SpanLimits``, the current-span context key). They are checked once,
on the first span, against a span the SDK builds itself; if anything differs (another SDK version), hop
spans take the SDK's public path and one log line says so. Spans that users start with their own tracers
are not affected at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from random import getrandbits
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import EventBase, SpanLimits, Tracer, TracerProvider, _Span, sampling
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.util import types

try:  # private names, checked by the probe below; without them hop spans take the SDK's path
    from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - another SDK version
    NoOpTracerMetrics = None  # type: ignore[assignment,misc]
    _SPAN_KEY = None  # type: ignore[assignment]

logger = logging.getLogger("hoptrace.tracing")
_sdk_logger = logging.getLogger("opentelemetry.sdk.trace")
"""HopSpan's warnings are the SDK span's own, under the SDK's logger."""

SCOPE = "hoptrace"
VERSION = "0.1.0"

_ROOT_FLAGS = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_PLAIN_VALUES = frozenset((str, int, float, bool))
_TEXT = frozenset((str,))
_UNSET = Status(StatusCode.UNSET)
# Most hop spans get no event and no link: they share these empty lists until their first one (HopSpan's
# _add_event/_add_link give them their own; the probe checks that events and links land there).
_NO_EVENTS: BoundedList[EventBase] = BoundedList(None)
_NO_LINKS: BoundedList[trace.Link] = BoundedList(None)


class HopSpan(_Span):
    """An SDK span started by :class:`HopTracer`: same fields and behaviour, a cheaper ``set_attribute``
    for plain values, and an ``end`` that hands processors the span itself (immutable from then on)."""

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        attributes = self._attributes
        if (
            value.__class__ not in _PLAIN_VALUES
            or key.__class__ is not str
            or not key
            or attributes.__class__ is not BoundedAttributes
        ):
            super().set_attribute(key, value)
            return
        limit = attributes.maxlen
        length = attributes.max_value_len
        with self._lock:
            if self._end_time is not None:
                _sdk_logger.warning("Setting attribute on ended span.")
                return
            plain = attributes._dict
            if (limit is None or len(plain) < limit) and (
                length is None or value.__class__ is not str or len(value) <= length
            ):
                with attributes._lock:
                    plain.pop(key, None)  # the SDK re-inserts a key set again: it moves to the end
                    plain[key] = value
                return
        super().set_attribute(key, value)

    def _add_event(self, event: EventBase) -> None:
        with self._lock:
            if self._end_time is None:
                events = self._events
                if events is _NO_EVENTS:  # the span's own list, on its first event
                    events = self._events = BoundedList(self._limits.max_events)
                events.append(event)  # type: ignore[attr-defined]
                return
        _sdk_logger.warning("Tried calling %s on an ended span.", "_add_event")

    def _add_link(self, link: trace.Link) -> None:
        with self._lock:
            if self._end_time is None:
                links = self._links
                if links is _NO_LINKS:  # the span's own list, on its first link
                    links = self._links = BoundedList(self._limits.max_links)
                links.append(link)  # type: ignore[attr-defined]
                return
        _sdk_logger.warning("Tried calling %s on an ended span.", "_add_link")

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._start_time is None:
                raise RuntimeError("Calling end() on a not started span.")
            if self._end_time is not None:
                _sdk_logger.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
            self._attributes._immutable = True  # type: ignore[union-attr]
        if self._record_end_metrics:
            self._record_end_metrics()
        processor = self._span_processor
        processor._on_ending(self)
        processor.on_end(self)


class HopTracer(trace.Tracer):
    """The tracer of hoptrace's hop spans; see the module docstring. Follows the global tracer provider
    (set before or after it is made), or uses ``tracer_provider``. Thread-safe; never raises more than the
    SDK's ``start_span``."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._fixed = tracer_provider
        self._provider: object = None
        self._tracer: trace.Tracer = trace.NoOpTracer()
        self._fast: FastPath | None = None

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        provider = self._fixed or trace.get_tracer_provider()
        if provider is not self._provider:
            self._bind(provider)
        fast = self._fast
        if fast is not None:
            span = fast.start(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
            if span is not None:
                return span
        return self._tracer.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # the API types it with its own decorator
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        """As the SDK's: :meth:`start_span`, made current for the block."""
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current

    def _bind(self, provider: object) -> None:
        tracer = trace.get_tracer(SCOPE, VERSION, tracer_provider=provider)  # type: ignore[arg-type]
        self._tracer = tracer
        self._fast = FastPath.for_tracer(provider, tracer)
        self._provider = provider


class FastPath:
    """What hop spans need from one SDK tracer, read once. :meth:`start` returns a started span, or ``None``
    when the SDK must decide (a sampler other than the default or ``always_on``, a parent that is not
    sampled, a disabled tracer, a parent that is not a ``SpanContext``)."""

    def __init__(self, tracer: Tracer) -> None:
        limits: SpanLimits = tracer._span_limits
        self._tracer = tracer
        self._parent_based = tracer.sampler is sampling.DEFAULT_ON
        self._processor = tracer.span_processor
        self._limits = limits
        self._max_attributes = limits.max_span_attributes
        self._plain_values = limits.max_span_attribute_length is None
        # What the SDK's (no-op) tracer metrics give every span to call at its end.
        record_end = tracer._tracer_metrics.start_span(None, sampling.Decision.RECORD_AND_SAMPLE)
        # A span's fields, in the SDK's order, with what every hop span of this tracer shares; copying it
        # and setting the rest costs a quarter of building the same dict from keyword arguments.
        self._template: dict[str, Any] = {
            "_name": None,
            "_context": None,
            "_kind": None,
            "_instrumentation_info": tracer.instrumentation_info,
            "_instrumentation_scope": tracer._instrumentation_scope,
            "_parent": None,
            "_start_time": None,
            "_end_time": None,
            "_attributes": None,
            "_events": _NO_EVENTS,
            "_links": _NO_LINKS,
            "_resource": None,
            "_status": _UNSET,
            "_sampler": tracer.sampler,
            "_trace_config": None,
            "_record_exception": True,
            "_set_status_on_exception": True,
            "_span_processor": tracer.span_processor,
            "_limits": limits,
            "_lock": None,
            "_record_end_metrics": record_end,
        }
        self._attributes_template: dict[str, Any] = {
            "_dict": None,
            "maxlen": self._max_attributes,
            "dropped": 0,
            "max_value_len": None,
            "_lock": None,
            "_immutable": False,
        }

    @classmethod
    def for_tracer(cls, provider: object, tracer: object) -> FastPath | None:
        """The fast path for ``tracer`` (made by ``provider``), or ``None``: then ``tracer`` makes every hop
        span (not an SDK provider, a sampler or id generator of the user's, the SDK's own metrics on, or an
        SDK that builds spans differently). Never raises."""
        if not isinstance(provider, TracerProvider) or type(tracer) is not Tracer:
            return None
        try:
            if tracer.sampler is not sampling.DEFAULT_ON and tracer.sampler is not sampling.ALWAYS_ON:
                return None
            if type(tracer.id_generator) is not RandomIdGenerator:
                return None
            if type(tracer._tracer_metrics) is not NoOpTracerMetrics:  # the SDK's own metrics are on
                return None
            return cls(tracer) if sdk_shape_checked() else None
        except Exception as exc:  # another SDK's tracer: its own path
            logger.info("hoptrace: hop spans take the OpenTelemetry SDK's public path (%r)", exc)
            return None

    def start(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: types.Attributes,
        links: Sequence[trace.Link] | None,
        start_time: int | None,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> HopSpan | None:
        tracer = self._tracer
        if not tracer._tracer_config.is_enabled:
            return None
        holder = (context if context is not None else get_current()).get(_SPAN_KEY)
        if holder is None or not (holder.__class__ in _SPAN_CLASSES or isinstance(holder, trace.Span)):
            parent = None
        else:
            parent = holder.get_span_context()
            if parent.__class__ is not SpanContext:
                return None
            if not parent.is_valid:
                parent = None
        if parent is None:
            trace_id = getrandbits(128)
            while not trace_id:
                trace_id = getrandbits(128)
            flags = _ROOT_FLAGS
            state = None
        else:
            parent_flags = parent.trace_flags
            if not parent_flags & TraceFlags.SAMPLED and self._parent_based:
                return None  # not sampled: the SDK makes the non-recording span
            trace_id = parent.trace_id
            flags = _ROOT_FLAGS if parent_flags & TraceFlags.RANDOM_TRACE_ID else _SAMPLED
            state = parent.trace_state
        span_id = getrandbits(64)
        while not span_id:
            span_id = getrandbits(64)
        fields = self._template.copy()
        fields["_name"] = name
        # SpanContext's own __new__ computes is_valid: both ids are non-zero and in range here.
        fields["_context"] = tuple.__new__(
            SpanContext,
            (trace_id, span_id, False, flags, DEFAULT_TRACE_STATE if state is None else state, True),
        )
        fields["_kind"] = kind
        fields["_parent"] = parent
        fields["_start_time"] = start_time if start_time is not None else time_ns()
        fields["_attributes"] = self._attributes(attributes)
        fields["_resource"] = tracer.resource  # replaced in a forked child
        if not record_exception:
            fields["_record_exception"] = False
        if not set_status_on_exception:
            fields["_set_status_on_exception"] = False
        fields["_lock"] = threading.Lock()
        span = object.__new__(HopSpan)
        span.__dict__ = fields
        if links:
            span._links = span._new_links(links)  # the SDK's own validation of links
        self._processor.on_start(span, parent_context=context)
        return span

    def _attributes(self, attributes: types.Attributes) -> BoundedAttributes:
        """The span's attribute container: ``attributes`` as they are when they are plain values within the
        limits (what the SDK's validation would keep unchanged), else validated by the SDK."""
        plain = dict(attributes) if attributes else {}
        limit = self._max_attributes
        if not (
            self._plain_values
            and (limit is None or len(plain) <= limit)
            and _PLAIN_VALUES.issuperset(map(type, plain.values()))
            and _TEXT.issuperset(map(type, plain))
            and "" not in plain
        ):
            return BoundedAttributes(
                limit, attributes, immutable=False, max_value_len=self._limits.max_span_attribute_length
            )
        fields = self._attributes_template.copy()
        fields["_dict"] = plain
        fields["_lock"] = threading.Lock()
        bounded = object.__new__(BoundedAttributes)
        bounded.__dict__ = fields
        return bounded


_SPAN_CLASSES = (HopSpan, _Span, NonRecordingSpan)


def private_names_found() -> bool:
    """Whether the SDK's private names the fast path reads were found at import."""
    return NoOpTracerMetrics is not None and _SPAN_KEY is not None


_checked: bool | None = None
_check_lock = threading.Lock()


def sdk_shape_checked() -> bool:
    """Whether the installed SDK builds spans as :class:`HopTracer` does (probed once per process by
    :func:`hoptrace.tracing._spans.probe.shape_problem`: a span built by the SDK and one built by the fast
    path are compared field by field). Logs once if not."""
    global _checked
    if _checked is None:
        with _check_lock:
            if _checked is None:
                from hoptrace.tracing._spans.probe import shape_problem

                problem = (
                    shape_problem(FastPath, SCOPE, VERSION, {"_events": _NO_EVENTS, "_links": _NO_LINKS})
                    if private_names_found()
                    else "the SDK's private names moved"
                )
                if problem is not None:
                    logger.info(
                        "hoptrace: hop spans take the OpenTelemetry SDK's public path (%s): the same spans, "
                        "at a higher CPU cost",
                        problem,
                    )
                _checked = problem is None
    return _checked
