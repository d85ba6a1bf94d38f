"""The span model shared by the embedded backend, TraceQL and the harness assertions.

It is decoded from OTLP (the backend) or from Tempo's trace-by-id JSON (``TempoClient``), so the same
TraceQL evaluation and the same assertions work against the embedded backend and real Tempo.
Instances are immutable and safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

AttributeValue = str | bool | int | float | tuple[str | bool | int | float, ...]
"""An attribute value after decoding OTLP's AnyValue (arrays become tuples)."""


class OpaqueText(str):
    """The text of an attribute value TraceQL cannot compare: OTLP bytes (as hex) or a key-value list (as
    compact JSON). It reads as that text in assertions; TraceQL treats the attribute as absent, as Tempo
    does: it keeps such values in its ``ValueUnsupported`` column (a JSON-encoded ``AnyValue``), which no
    TraceQL condition reads. So ``{ span.blob = "abcd" }`` does not match the bytes ``0xabcd``."""

    __slots__ = ()


class SpanKind(StrEnum):
    """OTLP span kinds, valued as TraceQL spells them (``kind = server``)."""

    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class StatusCode(StrEnum):
    """OTLP status codes, valued as TraceQL spells them (``status = error``)."""

    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanLink:
    trace_id: str
    """32 lowercase hex characters."""
    span_id: str
    """16 lowercase hex characters."""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Span:
    """One finished span, with its resource's attributes flattened in."""

    trace_id: str
    """32 lowercase hex characters."""
    span_id: str
    """16 lowercase hex characters."""
    parent_span_id: str | None
    """16 lowercase hex characters, or ``None`` for a root span."""
    name: str
    kind: SpanKind
    status: StatusCode
    status_message: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    service_name: str
    """The resource's ``service.name``; ``""`` when the resource has none."""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    resource_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    links: tuple[SpanLink, ...] = ()
    scope_name: str = ""
    """The instrumentation scope's name (TraceQL's ``instrumentation:name``)."""
    scope_version: str = ""
    """The instrumentation scope's version (``instrumentation:version``)."""
    scope_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    """The instrumentation scope's attributes (``instrumentation.x``), shared by the spans of one scope."""

    @property
    def duration_nano(self) -> int:
        return max(0, self.end_time_unix_nano - self.start_time_unix_nano)


@dataclass(frozen=True, slots=True)
class OpenSpan:
    """A span that a traced process reported when it started (``HOPTRACE_OPEN_SPANS_URL``).

    The harness counts it as still running until a finished span with the same id arrives.
    """

    trace_id: str
    """32 lowercase hex characters."""
    span_id: str
    """16 lowercase hex characters."""
    parent_span_id: str | None
    name: str
    kind: SpanKind
    service_name: str
    start_time_unix_nano: int
