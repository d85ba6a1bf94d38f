"""Tag names and values for autocompletion: ``/api/search/tags``, ``/api/v2/search/tags`` and
``/api/v2/search/tag/{tag}/values`` (plus v1 ``/api/search/tag/{tag}/values``), in Tempo's JSON.

They scan the most recently written traces, up to :data:`MAX_SPANS_SCANNED` spans, as Tempo bounds
its own tag lookups to recent data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hoptrace.harness._model import Span
from hoptrace.harness.backend._index_plan import plan, wanted_attributes
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._trace_index import index_for, typed_value
from hoptrace.harness.traceql import (
    INTRINSICS,
    MISSING,
    Attribute,
    Intrinsic,
    Pipeline,
    TraceView,
    Value,
    evaluate_pipeline,
    field_value,
)

MAX_SPANS_SCANNED = 50_000
INTRINSIC_TAGS = sorted(INTRINSICS)
"""The intrinsics TraceQL understands, in both spellings, for the ``intrinsic`` scope."""
_ENUMERABLE_INTRINSICS = {"name", "status", "kind", "statusMessage", "rootName", "rootServiceName"}


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


SCOPES = ("resource", "span", "intrinsic")


def tag_names(store: TraceStore, scope: str | None) -> dict[str, list[str]]:
    """Attribute names per scope (``resource``, ``span``) of the stored traces, plus the ``intrinsic``
    names; read from the trace index.

    ``scope`` None or ``"all"`` gives every scope; otherwise it must be one of :data:`SCOPES`.
    """
    index = index_for(store)
    with store.query_gate.admit() as clock:
        index.refresh((), clock.tick)
    result = index.tag_names()
    result["intrinsic"] = INTRINSIC_TAGS
    if scope is None or scope == "all":
        return result
    return {scope: result[scope]}


def tags_v1(store: TraceStore, scope: str | None) -> dict[str, Any]:
    names = tag_names(store, scope)
    flat = sorted(
        {name for name_scope, values in names.items() if name_scope != "intrinsic" for name in values}
    )
    return {"tagNames": flat}


def tags_v2(store: TraceStore, scope: str | None) -> dict[str, Any]:
    names = tag_names(store, scope)
    return {"scopes": [{"name": name, "tags": tags} for name, tags in names.items()]}


def parse_tag(tag: str) -> Attribute | Intrinsic | None:
    """``resource.x``, ``span.x``, ``.x``, an intrinsic, or (v1 style) a bare attribute name."""
    if tag in INTRINSICS:
        return Intrinsic(INTRINSICS[tag])
    for scope in ("resource", "span", ""):
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


def _indexed_values(store: TraceStore, field: Attribute | Intrinsic) -> list[tuple[str, str]] | None:
    """The values the trace index knows for ``field`` (``None`` when it does not keep them)."""
    index = index_for(store)
    if isinstance(field, Intrinsic):
        known = _INDEXED_INTRINSICS.get(field.name)
        if known is None:
            return None
        with store.query_gate.admit() as clock:
            index.refresh((), clock.tick)
        posting, kind = known
        return [(kind, value) for value in index.intrinsic_values(posting)]
    if field.parent or field.scope not in ("", "span", "resource"):
        return None
    with store.query_gate.admit() as clock:
        index.refresh((), clock.tick)
    return index.tag_values(("span", "resource") if field.scope == "" else (field.scope,), field.name)


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
