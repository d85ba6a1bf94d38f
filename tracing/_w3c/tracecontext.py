"""W3C Trace Context, Level 1 and Level 2: the ``traceparent`` and ``tracestate`` headers.

Rules implemented (https://www.w3.org/TR/trace-context-2/):

- ``traceparent`` is ``version-traceid-parentid-flags`` in lower-case hex, optional whitespace around it.
  Version ``ff`` is invalid. Version ``00`` is exactly 55 characters; a higher version is parsed by its
  first 55 characters, which must be followed by the end or by ``-``. All-zero ids are invalid. More than
  one ``traceparent`` header is invalid. An invalid ``traceparent`` starts a new trace, and its
  ``tracestate`` is ignored.
- ``tracestate`` header fields are combined with ``,``. Empty list-members are skipped. Keys follow Level
  2's grammar, ``( lcalpha / DIGIT ) 0*255 ( lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" )``; values are
  up to 256 printable characters without ``,`` or ``=`` and without trailing space. One invalid
  list-member, or more than 32, throws the whole ``tracestate`` away. A repeated key keeps its first
  member (the spec lets a vendor keep one of them).
- Sent: version ``00``, and of the flags only ``sampled`` (Level 1) and ``random-trace-id`` (Level 2).

Problems are counted (``malformed_trace_context``), never logged per request. Never raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import cast

from opentelemetry import trace
from opentelemetry.context import Context, get_current
from opentelemetry.propagators import textmap
from opentelemetry.trace import TraceState
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from hoptrace.tracing._counters import malformed_trace_context
from hoptrace.tracing._w3c import compiled

try:  # the API's current-span key: the extracted context is built in one copy (set_span_in_context's)
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - another API version: the public path
    _SPAN_KEY = None  # type: ignore[assignment]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# Patterns compiled on first use (compiled):
_PARENT = r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})"
_OWS = " \t"
_KNOWN_FLAGS = 0x03  # sampled (Level 1) | random-trace-id (Level 2)
_TRACE_FLAGS = [trace.TraceFlags(flags) for flags in range(256)]
_FLAG_TEXT = [f"{flags:02x}" for flags in range(256)]
_MAX_MEMBERS = 32
# 32 members of a 256-character key, "=", a 256-character value and ", ": longer input is not parsed.
_MAX_TRACESTATE_LENGTH = _MAX_MEMBERS * (256 + 1 + 256 + 2) + 1024
_MEMBER = (
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)


class W3CTraceState(TraceState):
    """A ``TraceState`` that holds keys of Level 2's grammar (e.g. ``foo@bar@baz``, ``1@x``).

    ``opentelemetry-api``'s ``TraceState`` validates keys with Level 1's grammar and has no other
    constructor, so the members are put in its storage (``_dict``, api 1.45) after validation here.
    """

    def __init__(self, members: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._dict = dict(members)


_NO_STATE = W3CTraceState()  # immutable, as every TraceState: one serves every span without tracestate
_SPAN_CLASSES: set[type] = set()
"""Classes of current spans seen to be ``trace.Span`` s (an ABC: its isinstance check costs a call)."""


def _current_span(context: Context | None) -> trace.Span:
    """``trace.get_current_span(context)``, without its ABC check for span classes seen before."""
    if _SPAN_KEY is None:
        return trace.get_current_span(context)
    span = (context if context is not None else get_current()).get(_SPAN_KEY)
    if span.__class__ in _SPAN_CLASSES:
        return cast(trace.Span, span)
    if span is None or not isinstance(span, trace.Span):
        return trace.INVALID_SPAN
    _SPAN_CLASSES.add(span.__class__)
    return span


def parse_traceparent(values: list[str] | None) -> trace.SpanContext | None:
    """The remote span context of ``traceparent`` header values, or ``None`` when absent or invalid."""
    fields = _traceparent_fields(values)
    if fields is None:
        return None
    trace_id, span_id, flags = fields
    return trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=_TRACE_FLAGS[flags])


def _traceparent_fields(values: list[str] | None) -> tuple[int, int, int] | None:
    """Trace id, parent id and flags of ``traceparent`` header values; ``None`` when absent or invalid."""
    if not values:
        return None
    if len(values) > 1:  # two traceparent headers: neither can be trusted
        malformed_trace_context.record()
        return None
    header = values[0].strip(_OWS)
    match = compiled(_PARENT).match(header)
    if match is None:
        malformed_trace_context.record()
        return None
    version, trace_hex, span_hex, flags = match.groups()
    if not (len(header) == 55 and version == "00") and not _version_allows(version, header):
        malformed_trace_context.record()
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        malformed_trace_context.record()
        return None
    return trace_id, span_id, int(flags, 16)


def _version_allows(version: str, header: str) -> bool:
    if version == "ff":
        return False
    if version == "00":
        return len(header) == 55
    return len(header) == 55 or header[55] == "-"


def parse_tracestate(values: list[str] | None) -> W3CTraceState | None:
    """The members of ``tracestate`` header values, in order; ``None`` when the list is invalid."""
    if not values:
        return _NO_STATE
    members: dict[str, str] = {}
    count = 0
    if sum(map(len, values)) > _MAX_TRACESTATE_LENGTH:
        malformed_trace_context.record()
        return None
    member_pattern = compiled(_MEMBER)
    for raw in ",".join(values).split(","):
        member = raw.strip(_OWS)
        if not member:
            continue
        match = member_pattern.fullmatch(member)
        count += 1
        if match is None or count > _MAX_MEMBERS:
            malformed_trace_context.record()
            return None
        members.setdefault(match.group(1), match.group(2))
    return W3CTraceState(members.items())


def format_tracestate(members: Mapping[str, str]) -> str:
    """The ``tracestate`` header value for ``members``; invalid members are left out."""
    return ",".join(_valid_members(members))


def _valid_members(members: Mapping[str, str]) -> Iterator[str]:
    member_pattern = compiled(_MEMBER)
    for key, value in list(members.items())[:_MAX_MEMBERS]:
        member = f"{key}={value}"
        if member_pattern.fullmatch(member):
            yield member


class TraceContextPropagator(textmap.TextMapPropagator):
    """``tracecontext`` for ``OTEL_PROPAGATORS``: W3C Trace Context Level 1 and 2 (module docstring).

    Stateless and thread-safe; ``extract`` and ``inject`` never raise for well-behaved getters/setters.
    """

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        context = Context() if context is None else context
        fields = _traceparent_fields(getter.get(carrier, TRACEPARENT))
        if fields is None:
            return context
        state = parse_tracestate(getter.get(carrier, TRACESTATE))
        parent = trace.SpanContext(
            fields[0],
            fields[1],
            is_remote=True,
            trace_flags=_TRACE_FLAGS[fields[2]],
            trace_state=state if state is not None else _NO_STATE,
        )
        if _SPAN_KEY is None:
            return trace.set_span_in_context(trace.NonRecordingSpan(parent), context)
        values = context.copy()
        values[_SPAN_KEY] = trace.NonRecordingSpan(parent)
        return Context(values)

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        span_context = _current_span(context).get_span_context()
        if span_context.__class__ is trace.SpanContext:  # a tuple: its fields read by position
            trace_id, span_id, _remote, flags, trace_state, valid = span_context
        else:
            trace_id, span_id, flags = span_context.trace_id, span_context.span_id, span_context.trace_flags
            trace_state, valid = span_context.trace_state, span_context.is_valid
        if not valid:
            return
        ids = "00-%032x-%016x-" % (trace_id, span_id)  # noqa: UP031 - half the cost of format specs
        setter.set(carrier, TRACEPARENT, ids + _FLAG_TEXT[flags & _KNOWN_FLAGS])
        if trace_state is not _NO_STATE and trace_state is not DEFAULT_TRACE_STATE and trace_state:
            state = format_tracestate(trace_state)
            if state:
                setter.set(carrier, TRACESTATE, state)

    @property
    def fields(self) -> set[str]:
        return {TRACEPARENT, TRACESTATE}
