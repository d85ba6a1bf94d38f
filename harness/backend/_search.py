"""``/api/search``: TraceQL over the store, answered in Tempo's ``SearchResponse`` JSON.

Each hit carries ``traceID`` (hex, leading zeros trimmed), ``rootServiceName``, ``rootTraceName``,
``startTimeUnixNano`` (string), ``durationMs`` (left out when 0, as gogo jsonpb does), ``spanSets``
(and the older single ``spanSet``) listing up to ``spss`` matched spans with the attributes the query
mentions, and ``serviceStats``. The trace index (:mod:`._trace_index`) names the traces that can
match, most recently written first, so a selective search reads only those and a broad one stops at
``limit``; traces the index has not read yet are searched without waiting for it when the query allows
(:mod:`._unread_search`). Results are sorted by start time, newest first, as Tempo sorts them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness._model import Span, StatusCode
from hoptrace.harness.backend._go_duration import go_duration
from hoptrace.harness.backend._index_plan import plan, wanted_attributes
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.backend._unread_search import EVERYTHING, candidates_before_catching_up, needs_of
from hoptrace.harness.traceql import (
    MISSING,
    Attribute,
    Duration,
    Intrinsic,
    Pipeline,
    Spanset,
    TraceView,
    Value,
    evaluate_spansets,
    field_value,
    parse_traceql,
    referenced_fields,
)

ROOT_NOT_YET_RECEIVED = "<root span not yet received>"
"""Tempo's ``rootServiceName`` for a trace whose root span has not arrived."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: Pipeline
    start_seconds: int | None = None
    end_seconds: int | None = None
    limit: int = 20
    spans_per_spanset: int = 3
    min_duration_nanos: int | None = None
    max_duration_nanos: int | None = None


def search(store: TraceStore, request: SearchRequest) -> dict[str, Any]:
    """Run ``request`` over ``store``; returns the response document. Thread safe; CPU bound, paced by
    the store's query gate, which raises ``QueryTimeout`` past the query deadline."""
    fields = referenced_fields(request.query)
    hits: list[tuple[int, dict[str, Any]]] = []
    inspected_traces = 0
    inspected_bytes = 0
    requirement = plan(request.query)
    index = index_for(store)
    seconds = 1_000_000_000
    needs = needs_of(requirement)
    with store.query_gate.admit() as clock:
        low = request.start_seconds * seconds if request.start_seconds is not None else None
        high = (request.end_seconds + 1) * seconds if request.end_seconds is not None else None
        candidates: Iterable[bytes]
        # Traces not read yet are searched without waiting for the index when the query allows.
        split = None
        if index.learn(wanted_attributes(requirement), clock.tick):
            split = index.split_candidates(requirement, low, high, searchable=needs is not None)
        if split is not None:
            unread, read = split
            candidates = candidates_before_catching_up(store, unread, read, needs or EVERYTHING, clock.tick)
        else:
            index.refresh(wanted_attributes(requirement), clock.tick)
            candidates = index.candidates(requirement, low, high)
        for trace_id in candidates:
            if len(hits) >= request.limit:
                break
            clock.tick()
            records = store.records(trace_id)
            if not records:
                continue  # evicted since the index saw it
            inspected_traces += 1
            inspected_bytes += sum(len(span) for _, span in records)
            spans = store.decoded(trace_id, records)
            trace = TraceView(spans)
            start = min(span.start_time_unix_nano for span in spans)
            end = max(span.end_time_unix_nano for span in spans)
            if not _in_window(request, start, end):
                continue
            matched = evaluate_spansets(request.query, trace)
            if matched:
                hits.append((start, _trace_hit(trace_id, trace, start, end, matched, fields, request)))
    hits.sort(key=lambda hit: hit[0], reverse=True)
    return {
        "traces": [hit for _, hit in hits],
        "metrics": {
            "inspectedTraces": inspected_traces,
            "inspectedBytes": str(inspected_bytes),
            "completedJobs": 1,
            "totalJobs": 1,
        },
    }


def _in_window(request: SearchRequest, start: int, end: int) -> bool:
    if request.start_seconds is not None and end < request.start_seconds * 1_000_000_000:
        return False
    if request.end_seconds is not None and start > request.end_seconds * 1_000_000_000:
        return False
    duration = end - start
    if request.min_duration_nanos is not None and duration < request.min_duration_nanos:
        return False
    return request.max_duration_nanos is None or duration <= request.max_duration_nanos


def _trace_hit(
    trace_id: bytes,
    trace: TraceView,
    start: int,
    end: int,
    matched: list[Spanset],
    fields: list[Attribute | Intrinsic],
    request: SearchRequest,
) -> dict[str, Any]:
    hit: dict[str, Any] = {"traceID": trace_id.hex().lstrip("0") or "0"}
    if trace.root is None:
        hit["rootServiceName"] = ROOT_NOT_YET_RECEIVED
    else:
        hit["rootServiceName"] = trace.root.service_name
        hit["rootTraceName"] = trace.root.name
    hit["startTimeUnixNano"] = str(start)
    duration_ms = (end - start) // 1_000_000
    if duration_ms:
        hit["durationMs"] = duration_ms
    spansets = [_spanset_json(spanset, trace, fields, request.spans_per_spanset) for spanset in matched]
    hit["spanSet"] = spansets[0]
    hit["spanSets"] = spansets
    stats: dict[str, dict[str, int]] = {}
    for span in trace.spans:
        service = stats.setdefault(span.service_name, {"spanCount": 0})
        service["spanCount"] += 1
        if span.status is StatusCode.ERROR:
            service["errorCount"] = service.get("errorCount", 0) + 1
    hit["serviceStats"] = stats
    return hit


def _spanset_json(
    spanset: Spanset, trace: TraceView, fields: list[Attribute | Intrinsic], spans_per_spanset: int
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "spans": [_span_json(span, trace, fields) for span in spanset.spans[:spans_per_spanset]],
        "matched": len(spanset.spans),
    }
    if spanset.by:  # by(): Tempo names each group's value "by(<expression>)"
        document["attributes"] = [
            {"key": f"by({_expression_text(expression)})", "value": any_value_json(value)}
            for expression, value in spanset.by
        ]
    return document


def _expression_text(expression: object) -> str:
    if isinstance(expression, Attribute):
        scope = f"{'parent.' if expression.parent else ''}{expression.scope}"
        return f"{scope}.{expression.name}"
    if isinstance(expression, Intrinsic):
        return expression.name
    return "expression"


_NOT_SPAN_ATTRIBUTES = frozenset(
    {"name", "duration", "span:id", "trace:id", "traceDuration", "rootServiceName", "rootName"}
)
"""Intrinsics Tempo leaves out of a span's ``attributes`` in search results: the span's own fields, and
the trace's (which the result carries once, not per span)."""


def _span_json(span: Span, trace: TraceView, fields: list[Attribute | Intrinsic]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "spanID": span.span_id,
        "name": span.name,
        "startTimeUnixNano": str(span.start_time_unix_nano),
        "durationNanos": str(span.duration_nano),
    }
    attributes = []
    for field in fields:
        if isinstance(field, Intrinsic) and field.name in _NOT_SPAN_ATTRIBUTES:
            continue
        value = field_value(field, span, trace)
        if isinstance(value, tuple) and value and _per_event_or_link(field):
            value = value[-1]  # Tempo keeps one value per name for a span: its last event's or link's
        if value is not MISSING:
            attributes.append({"key": field.name, "value": any_value_json(value)})
    if attributes:
        document["attributes"] = attributes
    return document


def _per_event_or_link(field: Attribute | Intrinsic) -> bool:
    if isinstance(field, Attribute):
        return field.scope in ("event", "link")
    return field.name.startswith(("event:", "link:"))


def any_value_json(value: Value) -> dict[str, Any]:
    """An OTLP ``AnyValue`` in protobuf's JSON mapping (int64 as a string), as Tempo writes it."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, Enum):
        return {"stringValue": str(value.value)}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, Duration):  # Tempo writes a duration as Go prints it: "1.5ms", "1m30s"
        return {"stringValue": go_duration(int(value.nanos))}
    if isinstance(value, tuple):
        return {"arrayValue": {"values": [any_value_json(member) for member in value]}}
    return {"stringValue": str(value)}


def tags_query(tags: str) -> Pipeline:
    """Tempo's pre-TraceQL ``tags=key=value key2="v 2"`` (logfmt) search, as the equivalent TraceQL."""
    conditions = []
    for match in re.finditer(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S+)', tags):
        key, value = match.groups()
        if not value.startswith('"'):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        field = "name" if key == "name" else '."' + key.replace('"', '\\"') + '"'
        conditions.append(f"{field} = {value}")
    try:
        return parse_traceql("{ " + " && ".join(conditions) + " }")
    except InvalidExpression as exc:
        raise InvalidExpression(f"invalid tags {tags!r}: {exc}") from None
