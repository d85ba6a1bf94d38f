"""What one export request gives the tag catalogue, read at ingest from its merged spans
(:mod:`._lean_request`): the names and values of its span, resource, instrumentation, event and link
attributes, and its span names, kinds and statuses (as ``intrinsic`` values).

Each scope's spans come as flat lists, so a request's distinct attributes are one ``set`` of bytes, and
each distinct one is decoded once and remembered (:mod:`._attribute_facts`): about 4k instructions per
span (cachegrind, bench spans; mostly making and hashing the bytes objects), against ~26k the trace index
spends reading a span. That is what lets autocomplete answer right after a burst of ingest without
waiting for the index (see ``TraceIndex.tag_names``). Thread safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from opentelemetry.proto.trace.v1.trace_pb2 import Status

from hoptrace.harness._model import SpanKind, StatusCode
from hoptrace.harness.backend._attribute_facts import (
    AttributeFact,
    OriginFacts,
    OtherFacts,
    SpanAttributeFacts,
    attribute_fact,
)
from hoptrace.harness.backend._lean_request import ScopeGroup
from hoptrace.harness.backend._store import SpanOrigin

_KINDS = list(SpanKind)
"""In OTLP's numbering: ``SPAN_KIND_UNSPECIFIED`` is 0, ``SPAN_KIND_CONSUMER`` 5."""
_STATUSES = list(StatusCode)
CACHED_FACTS = 65_536
"""Distinct span names and statuses whose facts are kept; past that the cache starts again."""


def _intrinsic(name: str, value: object) -> AttributeFact:
    return attribute_fact("intrinsic", name, (value,), indexed=False)


class RequestFacts:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attributes = SpanAttributeFacts()
        self._others = OtherFacts()
        self._origins = OriginFacts()
        self._names: dict[bytes, AttributeFact] = {}
        self._statuses: dict[bytes, AttributeFact] = {}
        self._kinds = [_intrinsic("kind", kind) for kind in _KINDS]
        self._unset = _intrinsic("status", StatusCode.UNSET)

    def of(self, groups: Iterable[tuple[ScopeGroup, SpanOrigin]]) -> tuple[AttributeFact, ...]:
        """The distinct facts of a request's scope groups, each with its origin."""
        with self._lock:
            found: dict[AttributeFact, None] = {}
            for group, origin in groups:
                found.update(dict.fromkeys(self._origins.of(origin)))
                found.update(dict.fromkeys(self._of_spans(group)))
            return tuple(found)

    def _of_spans(self, group: ScopeGroup) -> list[AttributeFact]:
        flat, count = group.merged, len(group.spans)
        facts = [self._attributes.of(raw) for raw in set(flat.attributes[:])]
        facts += [self._name(raw) for raw in set(group.names)]
        kinds = group.kinds
        # A kind out of OTLP's range reads as unspecified, as the index reads it.
        facts += [self._kinds[kind if 0 <= kind < len(_KINDS) else 0] for kind in set(kinds)]
        statuses = group.statuses
        facts += [self._status(raw) for raw in set(statuses)]
        if len(kinds) < count:  # proto3 leaves a zero out: some span's kind is unspecified
            facts.append(self._kinds[0])
        if len(statuses) < count:
            facts.append(self._unset)
        events, links = flat.events, flat.links
        facts += [self._others.of("event:name", raw) for raw in set(events.name[:])]
        facts += [self._others.of("event", raw) for raw in set(events.attributes[:])]
        facts += [self._others.of("link", raw) for raw in set(links.attributes[:])]
        return facts

    def _name(self, raw: bytes) -> AttributeFact:
        fact = self._names.get(raw)
        if fact is None:
            if len(self._names) >= CACHED_FACTS:
                self._names.clear()
            fact = self._names[raw] = _intrinsic("name", raw.decode("utf-8", "replace"))
        return fact

    def _status(self, raw: bytes) -> AttributeFact:
        fact = self._statuses.get(raw)
        if fact is None:
            code = Status.FromString(raw).code
            status = _STATUSES[code] if 0 <= code < len(_STATUSES) else StatusCode.UNSET
            if len(self._statuses) >= CACHED_FACTS:
                self._statuses.clear()
            fact = self._statuses[raw] = _intrinsic("status", status)
        return fact
