"""What a trace gives the trace index, by its *shape*: the postings it is found by and the attribute
facts autocomplete lists.

A trace's shape is its signature (:func:`signature_of`): its distinct span keys (service, name, kind and
status, as the span columns number them), origins, raw span attributes, roots, and event and link
facts. Traces of one endpoint are alike, so :class:`TraceShapes` works each signature out once and
traces of that shape share one :class:`Shape` (and its postings tuple). Not thread safe: the trace index
uses it under its lock.
"""

from __future__ import annotations

from collections.abc import Container
from itertools import chain
from typing import Any

from hoptrace.harness.backend._attribute_facts import (
    AttributeFact,
    OriginFacts,
    OtherFacts,
    SpanAttributeFacts,
)
from hoptrace.harness.backend._index_plan import Posting, value_key
from hoptrace.harness.backend._lean_span import LeanAttributes
from hoptrace.harness.backend._span_columns import SpanColumns
from hoptrace.harness.backend._store import SpanOrigin, SpanRecord

MAX_SHAPES = 4_096
"""Distinct signatures remembered; past that, forgotten (traces with unique attribute values)."""

Signature = tuple[
    tuple[int, ...],
    tuple[SpanOrigin, ...],
    tuple[bytes, ...],
    tuple[tuple[str, str], ...],
    tuple[tuple[str, bytes], ...],
]
"""A trace's distinct span keys, origins and raw span attributes, its roots (service, name), and its
event names and event and link attributes (see :func:`_events_and_links`)."""


class Shape:
    """What the traces of one signature index: ``indexed``, the postings with sets of traces;
    ``postings``, those and the postings of attributes not queried yet; ``facts``, for autocomplete."""

    __slots__ = ("facts", "indexed", "postings")

    def __init__(
        self, indexed: tuple[Posting, ...], postings: tuple[Posting, ...], facts: tuple[AttributeFact, ...]
    ) -> None:
        self.indexed = indexed
        self.postings = postings
        self.facts = facts


def signature_of(new: list[SpanRecord], spans: list[Any], keys: list[int]) -> Signature:
    """The signature of spans ``new`` of a trace, parsed as ``spans`` (``LeanSpan``), with column ``keys``."""
    roots = tuple(
        (str(new[position][0].resource_attributes.get("service.name", "")), spans[position].name)
        for position in [position for position, span in enumerate(spans) if not span.parent_span_id]
    )
    return (
        tuple(dict.fromkeys(keys)),
        tuple(dict.fromkeys([origin for origin, _ in new])),
        tuple(dict.fromkeys(chain.from_iterable([span.attributes for span in spans]))),
        roots,
        events_and_links(spans),
    )


def events_and_links(spans: list[Any]) -> tuple[tuple[str, bytes], ...]:
    """``("event:name", name)`` per event name and ``(scope, raw KeyValue)`` per event and link
    attribute of ``spans``: facts with no postings (queries on them are not narrowed by the index)."""
    found: dict[tuple[str, bytes], None] = {}
    for span in spans:
        for event in span.events:  # most spans have none
            found[("event:name", event.name.encode())] = None
            found.update(dict.fromkeys([("event", raw) for raw in event.attributes]))
        for link in span.links:
            found.update(dict.fromkeys([("link", raw) for raw in link.attributes]))
    return tuple(found)


class TraceShapes:
    """Shapes by signature, and the facts they are made of; see the module docstring."""

    def __init__(self) -> None:
        self._shapes: dict[Signature, Shape] = {}
        self._quick: dict[Any, Shape] = {}
        """Shapes by the quick signature of ``_scanned_traces`` (what traces read for the first time are
        looked up by)."""
        self._key_postings: list[dict[Posting, None]] = []
        self._span_facts = SpanAttributeFacts()
        self._other_facts = OtherFacts()
        self._facts_of = OriginFacts().of

    def forget(self) -> None:
        """Forget the remembered shapes (what is wanted or overflowed changed)."""
        self._shapes.clear()
        self._quick.clear()

    def clear(self) -> None:
        """Forget everything that depends on the span columns (they were cleared)."""
        self._shapes.clear()
        self._quick.clear()
        self._key_postings.clear()

    def learn_keys(self, columns: SpanColumns) -> None:
        """The postings of the span keys (service, name, kind, status) the columns added."""
        known = self._key_postings
        while len(known) < columns.key_count:
            span_key = columns.key(len(known))
            postings = (
                ("name", span_key.name),
                ("kind", span_key.kind.value),
                ("status", span_key.status.value),
                ("attr", "resource", "service.name", value_key(span_key.service)),
            )
            known.append(dict.fromkeys(postings))

    def shape(
        self,
        signature: Signature,
        held: Shape | None,
        wanted: Container[tuple[str, str]],
        overflowed: Container[tuple[str, str]],
        canonical: dict[Posting, Posting],
    ) -> Shape:
        """What a trace of ``signature`` indexes (with what it ``held`` before, if more spans arrived):
        postings of ``wanted`` attributes get sets of traces (those in ``canonical`` already have one),
        the others are kept to learn them, unless ``overflowed``."""
        if held is None:
            known = self._shapes.get(signature)
            if known is not None:
                return known
        keys, origins, attributes, roots, others = signature
        indexed: dict[Posting, None] = {}
        plain: dict[Posting, None] = {}
        facts = list(held.facts) if held is not None else []
        for posting in held.postings if held is not None else ():
            (indexed if posting in canonical else plain)[posting] = None
        for key in keys:
            indexed.update(self._key_postings[key])
        for service, name in roots:
            indexed[("rootService", service)] = None
            indexed[("rootName", name)] = None
        facts += [fact for origin in origins for fact in self._facts_of(origin)]
        facts += [self._span_facts.of(raw) for raw in attributes]
        facts += [self._other_facts.of(scope, raw) for scope, raw in others]
        facts = list(dict.fromkeys(facts))
        for fact in facts:
            if fact.tag in wanted:
                indexed.update(fact.postings)
            elif fact.tag not in overflowed:
                plain.update(fact.postings)
        # Memory: shared key objects, in one tuple that traces of the same shape share.
        indexed_postings = tuple(canonical.get(posting, posting) for posting in indexed)
        shape = Shape(indexed_postings, (*indexed_postings, *plain), tuple(facts))
        if held is None:
            if len(self._shapes) >= MAX_SHAPES:
                self._shapes.clear()
            self._shapes[signature] = shape
        return shape

    def quick_shape(
        self,
        signature: Any,
        wanted: Container[tuple[str, str]],
        overflowed: Container[tuple[str, str]],
        canonical: dict[Posting, Posting],
    ) -> Shape:
        """What a new trace of quick ``signature`` (``_scanned_traces.QuickSignature``) indexes; see
        :meth:`shape`."""
        shape = self._quick.get(signature)
        if shape is None:
            keys, origins, runs, roots, others = signature
            attributes = chain.from_iterable(LeanAttributes.FromString(run).attributes for run in runs)
            shape = self.shape(
                (
                    keys,
                    origins,
                    tuple(dict.fromkeys(attributes)),
                    tuple(
                        (str(origin.resource_attributes.get("service.name", "")), name.decode())
                        for origin, name in roots
                    ),
                    others,
                ),
                None,
                wanted,
                overflowed,
                canonical,
            )
            if len(self._quick) >= MAX_SHAPES:
                self._quick.clear()
            self._quick[signature] = shape
        return shape
