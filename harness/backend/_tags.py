"""Tag names and values for autocompletion: ``/api/search/tags``, ``/api/v2/search/tags`` and
``/api/v2/search/tag/{tag}/values`` (plus v1 ``/api/search/tag/{tag}/values``), in Tempo's JSON.

Without a filter they answer from the trace index's tag catalogue and its catalogue of the requests it
has not read yet (:mod:`._unread_catalog`), so they answer at once, right after a burst of ingest too.
Filtered by ``q``, they scan the most recently written traces that match, up to
:data:`MAX_SPANS_SCANNED` spans, as Tempo bounds its own tag lookups to recent data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hoptrace.harness._model import Span
from hoptrace.harness.backend._index_plan import plan, wanted_attributes
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._trace_index import TraceIndex, index_for, typed_value
from hoptrace.harness.traceql import (
    INTRINSICS,
    MISSING,
    Attribute,
    Intrinsic,
    Pipeline,
    SpansetFilter,
    TraceView,
    Value,
    evaluate_pipeline,
    field_value,
)

MAX_SPANS_SCANNED = 50_000
INTRINSIC_TAGS = sorted(INTRINSICS)
"""The intrinsics TraceQL understands, in both spellings, for the ``intrinsic`` scope."""
_ENUMERABLE_INTRINSICS = {
    "name",
    "status",
    "kind",
    "statusMessage",
    "rootName",
    "rootServiceName",
    "instrumentation:name",
    "instrumentation:version",
    "event:name",
}


def _recent_spans(store: TraceStore, query: Pipeline | None) -> Iterator[tuple[Span, TraceView]]:
    scanned = 0
    requirement = plan(query) if query is not None else None
    index = index_for(store)
    with store.query_gate.admit() as clock:
        index.refresh(wanted_attributes(requirement), clock.tick)
        for trace_id in index.candidates(requirement):
            if scanned >= MAX_SPANS_SCANNED:
                return
            clock.tick()
            records = store.records(trace_id)
            if not records:
                continue
            spans = store.decoded(trace_id, records)
            scanned += len(spans)
            trace = TraceView(spans)
            selected = spans if query is None else evaluate_pipeline(query, trace)
            for span in selected:
                yield span, trace


SCOPES = ("resource", "span", "intrinsic", "event", "link", "instrumentation")
"""The scopes ``/api/v2/search/tags?scope=`` takes, as Tempo's API documentation lists them."""
_ATTRIBUTE_SCOPES = ("resource", "span", "event", "link", "instrumentation")


def tag_names(store: TraceStore, scope: str | None, query: Pipeline | None = None) -> dict[str, list[str]]:
    """Attribute names per scope of the stored traces (``resource`` and ``span`` always, ``event``,
    ``link`` and ``instrumentation`` when any span has them), plus the ``intrinsic`` names; read from the
    trace index, or, with ``query`` (Tempo's ``q``), from the recent spans it matches.

    ``scope`` None or ``"all"`` gives every scope; otherwise it must be one of :data:`SCOPES`.
    """
    if query is None or query.stages == (SpansetFilter(None),):  # "{ }" filters nothing: the index knows
        index = _catalogued(store)
        result = index.tag_names()
    else:
        result = _names_on_matching_spans(store, query)
    result["intrinsic"] = INTRINSIC_TAGS
    if scope is None or scope == "all":
        return result
    return {scope: result.get(scope, [])}


def _names_on_matching_spans(store: TraceStore, query: Pipeline) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {"resource": set(), "span": set()}
    for span, _ in _recent_spans(store, query):
        found["resource"].update(span.resource_attributes)
        found["span"].update(span.attributes)
        for scope, owners in (("event", span.events), ("link", span.links)):
            for owner in owners:
                found.setdefault(scope, set()).update(owner.attributes)
        if span.scope_attributes:
            found.setdefault("instrumentation", set()).update(span.scope_attributes)
    return {scope: sorted(names) for scope, names in found.items()}


def tags_v1(store: TraceStore, scope: str | None) -> dict[str, Any]:
    """``/api/search/tags``: one flat list; without a scope, the resource and span names (as Tempo's
    documentation says), else that scope's."""
    names = tag_names(store, scope)
    wanted = ("resource", "span") if scope is None or scope == "all" else (scope,)
    return {"tagNames": sorted({name for name_scope in wanted for name in names.get(name_scope, [])})}


def tags_v2(store: TraceStore, scope: str | None, query: Pipeline | None = None) -> dict[str, Any]:
    """``/api/v2/search/tags``: names per scope, of the spans ``query`` matches if given."""
    names = tag_names(store, scope, query)
    return {"scopes": [{"name": name, "tags": tags} for name, tags in names.items()]}


V1_SCOPES = ("resource", "span")
"""The prefixes the v1 tag-values calls read as scopes: a v1 tag is a bare attribute name, so a key such
as ``event.type`` stays one (the v2 calls read ``event.``, ``link.`` and ``instrumentation.`` too)."""


def parse_tag(tag: str, scopes: tuple[str, ...] = _ATTRIBUTE_SCOPES) -> Attribute | Intrinsic | None:
    """``resource.x``, ``span.x`` (and the other ``scopes``), ``.x``, an intrinsic, or (v1 style) a bare
    attribute name."""
    if tag in INTRINSICS:
        return Intrinsic(INTRINSICS[tag])
    for scope in (*scopes, ""):
        prefix = f"{scope}."
        if tag.startswith(prefix) and len(tag) > len(prefix):
            return Attribute(scope, tag[len(prefix) :])
    return Attribute("", tag) if tag else None


def tag_values(
    store: TraceStore, field: Attribute | Intrinsic, query: Pipeline | None
) -> list[tuple[str, str]]:
    """Distinct ``(type, value)`` pairs of ``field`` over recent spans (those ``query`` keeps, if given)."""
    if isinstance(field, Intrinsic) and field.name not in _ENUMERABLE_INTRINSICS:
        return []
    if query is None:
        indexed = _indexed_values(store, field)
        if indexed is not None:
            return indexed
    values: dict[tuple[str, str], None] = {}
    for span, trace in _recent_spans(store, query):
        value = field_value(field, span, trace)
        for member in value if isinstance(value, tuple) else (value,):
            typed = _typed(member)
            if typed is not None:
                values.setdefault(typed, None)
    return sorted(values)


_INDEXED_INTRINSICS = {
    "name": ("name", "string"),
    "kind": ("kind", "keyword"),
    "status": ("status", "keyword"),
    "rootName": ("rootName", "string"),
    "rootServiceName": ("rootService", "string"),
}
_SCOPE_INTRINSICS = {"instrumentation:name", "instrumentation:version", "event:name"}
"""Kept by the index as values of its ``intrinsic`` scope (per instrumentation scope, per event)."""
_ROOT_INTRINSICS = {"rootName", "rootServiceName"}
"""Known from the index's postings only: the tag catalogue of what it has not read yet cannot tell a root
span (see ``_request_facts``), so these read the rest first."""


def _indexed_values(store: TraceStore, field: Attribute | Intrinsic) -> list[tuple[str, str]] | None:
    """The values the trace index knows for ``field`` (``None`` when it does not keep them)."""
    if isinstance(field, Intrinsic):
        known = _INDEXED_INTRINSICS.get(field.name)
        if known is None and field.name not in _SCOPE_INTRINSICS:
            return None
        if field.name in _ROOT_INTRINSICS:
            index = index_for(store)
            with store.query_gate.admit() as clock:
                index.refresh((), clock.tick)
        else:
            index = _catalogued(store)
        values = index.tag_values(("intrinsic",), field.name)  # of traces not read yet, for postings'
        if known is None:
            return values
        posting, kind = known
        return sorted({*values, *((kind, value) for value in index.intrinsic_values(posting))})
    if field.parent:
        return None
    index = _catalogued(store)
    return index.tag_values(("span", "resource") if field.scope == "" else (field.scope,), field.name)


def _catalogued(store: TraceStore) -> TraceIndex:
    """The store's index, with every stored trace in its tag catalogue or its catalogue of what it has
    not read yet: a refresh only when the latter misses some (see :mod:`._unread_catalog`)."""
    index = index_for(store)
    if not index.catalogue_complete():
        with store.query_gate.admit() as clock:
            index.refresh((), clock.tick)
    else:  # autocomplete comes in bursts (a call per keystroke): the index keeper waits for a pause
        store.query_gate.note_quick_query()
    return index


def _typed(value: Value) -> tuple[str, str] | None:
    if value is MISSING or value is None:
        return None
    return typed_value(value)


def tag_values_v1(store: TraceStore, field: Attribute | Intrinsic) -> dict[str, Any]:
    """``/api/search/tag/{tag}/values``'s document: the distinct values as strings."""
    return {"tagValues": sorted({value for _, value in tag_values(store, field, None)})}


def tag_values_v2(store: TraceStore, field: Attribute | Intrinsic, query: Pipeline | None) -> dict[str, Any]:
    """``/api/v2/search/tag/{tag}/values``'s document: typed values (``type``, ``value``)."""
    return {"tagValues": [{"type": kind, "value": value} for kind, value in tag_values(store, field, query)]}
