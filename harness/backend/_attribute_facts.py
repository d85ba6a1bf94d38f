"""What the trace index learns from one attribute: its tag (scope and key), the values autocomplete lists,
and the postings a search looks it up by.

Spans repeat the same few attributes, so :class:`SpanAttributeFacts` keys facts by an attribute's
serialized ``KeyValue`` (as :data:`._lean_span.LeanSpan` hands them over) and decodes each distinct one
once. Not thread safe: the trace index uses it under its lock.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from enum import Enum
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from hoptrace.harness.backend._index_plan import SCOPE_INTRINSICS, Posting, value_key
from hoptrace.harness.backend._store import SpanOrigin

CACHED_FACTS = 65_536
"""Distinct span attributes whose facts are kept; past that the cache starts again (high-cardinality
values, such as ids, would otherwise fill it)."""
_SCALARS = {"string_value", "int_value", "double_value", "bool_value"}


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: the caches share them
class AttributeFact:
    tag: tuple[str, str]
    """``(scope, key)``: ``("span", "http.route")``, ``("resource", "service.name")``."""
    typed: tuple[tuple[str, str], ...]
    """Its values as autocomplete lists them (:func:`typed_value`)."""
    postings: dict[Posting, None]
    """``("attr", scope, key, value_key(value))`` per value (an array's members each), as dict keys:
    the index adds them to its dicts at once."""


def attribute_fact(scope: str, key: str, values: Any, *, indexed: bool = True) -> AttributeFact:
    """The fact of attribute ``key`` of ``scope`` with ``values``; without postings unless ``indexed``."""
    typed = tuple(found for value in values if (found := typed_value(value)) is not None)
    if not indexed:
        return AttributeFact((scope, key), typed, {})
    postings: dict[Posting, None] = {("attr", scope, key, value_key(value)): None for value in values}
    return AttributeFact((scope, key), typed, postings)


class SpanAttributeFacts:
    """Facts of span attributes by their serialized ``KeyValue``; see the module docstring."""

    def __init__(self) -> None:
        self._facts: dict[bytes, AttributeFact] = {}

    def of(self, raw: bytes) -> AttributeFact:
        fact = self._facts.get(raw)
        if fact is None:
            if len(self._facts) >= CACHED_FACTS:
                self._facts.clear()
            attribute = KeyValue.FromString(raw)
            fact = self._facts[raw] = attribute_fact("span", attribute.key, scalars(attribute.value))
        return fact


class OtherFacts:
    """Facts of event names (``("event:name", utf-8 name)``) and of event and link attributes
    (``("event" | "link", serialized KeyValue)``), which autocomplete lists and no posting indexes."""

    def __init__(self) -> None:
        self._facts: dict[tuple[str, bytes], AttributeFact] = {}

    def of(self, scope: str, raw: bytes) -> AttributeFact:
        fact = self._facts.get((scope, raw))
        if fact is None:
            if len(self._facts) >= CACHED_FACTS:
                self._facts.clear()
            if scope == "event:name":
                fact = attribute_fact("intrinsic", scope, (raw.decode(),), indexed=False)
            else:
                attribute = KeyValue.FromString(raw)
                fact = attribute_fact(scope, attribute.key, scalars(attribute.value), indexed=False)
            self._facts[(scope, raw)] = fact
        return fact


class OriginFacts:
    """Facts of an origin (spans sent together share it): its resource's attributes, its instrumentation
    scope's, and the scope's name and version (the ``intrinsic`` scope's ``instrumentation:name`` and
    ``instrumentation:version`` values), worked out once per origin."""

    def __init__(self) -> None:
        self._facts: weakref.WeakKeyDictionary[SpanOrigin, tuple[AttributeFact, ...]] = (
            weakref.WeakKeyDictionary()
        )

    def of(self, origin: SpanOrigin) -> tuple[AttributeFact, ...]:
        facts = self._facts.get(origin)
        if facts is None:
            name, version, scope_attributes = origin.scope_fields
            facts = self._facts[origin] = (
                *(
                    attribute_fact(scope, key, value if isinstance(value, tuple) else (value,))
                    for scope, attributes in (
                        ("resource", origin.resource_attributes),
                        ("instrumentation", scope_attributes),
                    )
                    for key, value in attributes.items()
                ),
                *(
                    attribute_fact("intrinsic", key, (text,))
                    for key, text in zip(SCOPE_INTRINSICS, (name, version), strict=True)
                    if text
                ),
            )
        return facts


def typed_value(value: Any) -> tuple[str, str] | None:
    """An attribute value as Tempo's typed tag value ``(type, text)``; floats as Go writes them
    (``NaN``, ``+Inf``); ``None`` for values autocomplete does not list."""
    if isinstance(value, Enum):
        return "keyword", str(value.value)
    if isinstance(value, bool):
        return "bool", "true" if value else "false"
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, float):
        if value != value:
            return "float", "NaN"
        if value in (float("inf"), float("-inf")):
            return "float", "+Inf" if value > 0 else "-Inf"
        return "float", repr(value)
    if isinstance(value, str):
        return "string", value
    return None


def scalars(value: Any) -> list[Any]:
    """An OTLP ``AnyValue``'s scalar, or an array's scalar members (as TraceQL compares them); ``[]`` for
    anything else."""
    which = value.WhichOneof("value")
    if which in _SCALARS:
        return [getattr(value, which)]
    if which == "array_value":
        return [
            getattr(member, kind)
            for member in value.array_value.values
            if (kind := member.WhichOneof("value")) in _SCALARS
        ]
    return []
