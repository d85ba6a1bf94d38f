"""Tag names and values for autocompletion: ``/api/search/tags``, ``/api/v2/search/tags`` and
``/api/v2/search/tag/{tag}/values`` (plus v1 ``/api/search/tag/{tag}/values``), in Tempo's JSON.

They scan the most recently written traces, up to :data:`MAX_SPANS_SCANNED` spans, as Tempo bounds
its own tag lookups to recent data.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Any

from hoptrace.harness._model import Span
from hoptrace.harness.backend._store import TraceStore
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
    with store.query_gate.admit() as clock:
        for trace_id, records in reversed(store.snapshot()):
            if scanned >= MAX_SPANS_SCANNED:
                return
            clock.tick()
            spans = store.decoded(trace_id, records)
            scanned += len(spans)
            trace = TraceView(spans)
            selected = spans if query is None else evaluate_pipeline(query, trace)
            for span in selected:
                yield span, trace


SCOPES = ("resource", "span", "intrinsic")


def tag_names(store: TraceStore, scope: str | None) -> dict[str, list[str]]:
    """Attribute names per scope (``resource``, ``span``) plus the ``intrinsic`` names.

    ``scope`` None or ``"all"`` gives every scope; otherwise it must be one of :data:`SCOPES`.
    """
    names: dict[str, set[str]] = {"resource": set(), "span": set()}
    seen_resources: set[int] = set()
    for span, _ in _recent_spans(store, None):
        names["span"].update(span.attributes)
        if id(span.resource_attributes) not in seen_resources:
            seen_resources.add(id(span.resource_attributes))
            names["resource"].update(span.resource_attributes)
    result = {name: sorted(values) for name, values in names.items()}
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
    values: dict[tuple[str, str], None] = {}
    for span, trace in _recent_spans(store, query):
        value = field_value(field, span, trace)
        for member in value if isinstance(value, tuple) else (value,):
            typed = _typed(member)
            if typed is not None:
                values.setdefault(typed, None)
    return sorted(values)


def _go_float(value: float) -> str:
    """A float as Tempo (Go's ``strconv.FormatFloat``) writes a tag value: ``NaN``, ``+Inf``, ``-Inf``."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _typed(value: Value) -> tuple[str, str] | None:
    if value is MISSING or value is None:
        return None
    if isinstance(value, Enum):
        return "keyword", str(value.value)
    if isinstance(value, bool):
        return "bool", "true" if value else "false"
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, float):
        return "float", _go_float(value)
    if isinstance(value, str):
        return "string", value
    return None


def tag_values_v1(store: TraceStore, field: Attribute | Intrinsic) -> dict[str, Any]:
    """``/api/search/tag/{tag}/values``'s document: the distinct values as strings."""
    return {"tagValues": sorted({value for _, value in tag_values(store, field, None)})}


def tag_values_v2(store: TraceStore, field: Attribute | Intrinsic, query: Pipeline | None) -> dict[str, Any]:
    """``/api/v2/search/tag/{tag}/values``'s document: typed values (``type``, ``value``)."""
    return {"tagValues": [{"type": kind, "value": value} for kind, value in tag_values(store, field, query)]}
