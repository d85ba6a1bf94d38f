"""``/api/metrics/query_range`` and ``/api/metrics/query``: TraceQL metrics in Tempo's JSON shapes.

Range answers are ``QueryRangeResponse``: ``series`` of ``labels`` (``KeyValue``), ``samples``
(``timestampMs`` as a string, ``value``) and ``exemplars`` (``labels`` with ``trace:id`` and ``span:id``,
``value``, ``timestampMs``), plus ``metrics``. Instant answers are ``QueryInstantResponse``: ``series`` of
``labels`` and one ``value``. The same documents feed the gRPC answers (see :mod:`._grpc_querier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hoptrace.harness.backend._metrics_engine import Inspected, MetricsWindow, evaluate_metrics
from hoptrace.harness.backend._metrics_series import Labels, SeriesSet
from hoptrace.harness.backend._search import any_value_json
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._time_params import (
    aligned,
    bounds_nanos,
    default_step_nanos,
    parse_duration_nanos,
)
from hoptrace.harness.traceql import MetricsRoot

MAX_EXEMPLARS = 100
"""Exemplars per series unless the request or a ``with(exemplars=...)`` hint asks for fewer."""
MAX_INTERVALS = 11_000
"""More intervals than Prometheus would draw is a mistake (``step`` too small): refused."""


@dataclass(frozen=True, slots=True)
class MetricsRequest:
    query: MetricsRoot
    window: MetricsWindow


def range_request(
    query: MetricsRoot,
    start: str | None,
    end: str | None,
    since: str | None,
    step: str | None,
    exemplars: str | None,
) -> MetricsRequest:
    """A range request from Tempo's HTTP parameters. Raises ``ValueError`` with the 400 message."""
    start_ns, end_ns = bounds_nanos(start, end, since)
    step_ns = parse_duration_nanos(step, "step") if step else default_step_nanos(start_ns, end_ns)
    return range_request_nanos(query, start_ns, end_ns, step_ns, _exemplars(exemplars))


def range_request_nanos(
    query: MetricsRoot, start_ns: int, end_ns: int, step_ns: int, exemplars: int | None
) -> MetricsRequest:
    """A range request from nanosecond bounds (the gRPC request's). Raises ``ValueError``."""
    if step_ns <= 0:
        raise ValueError("step must be positive")
    if end_ns <= start_ns:
        raise ValueError("end must be after start")
    start_ns, end_ns = aligned(start_ns, end_ns, step_ns)
    if (end_ns - start_ns) // step_ns > MAX_INTERVALS:
        raise ValueError(
            f"step is too small: {(end_ns - start_ns) // step_ns} intervals, at most {MAX_INTERVALS}"
        )
    limit = _hinted_exemplars(query, MAX_EXEMPLARS if exemplars is None else min(exemplars, MAX_EXEMPLARS))
    return MetricsRequest(query, MetricsWindow(start_ns, end_ns, step_ns, limit))


def instant_request(
    query: MetricsRoot, start: str | None, end: str | None, since: str | None
) -> MetricsRequest:
    """An instant request: one interval from ``start`` to ``end``. Raises ``ValueError``."""
    start_ns, end_ns = bounds_nanos(start, end, since)
    return instant_request_nanos(query, start_ns, end_ns)


def instant_request_nanos(query: MetricsRoot, start_ns: int, end_ns: int) -> MetricsRequest:
    if end_ns <= start_ns:
        raise ValueError("end must be after start")
    return MetricsRequest(query, MetricsWindow(start_ns, end_ns, end_ns - start_ns, 0))


def _exemplars(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise ValueError(f"invalid exemplars {text!r}: expected a count")
    return int(text)


def _hinted_exemplars(query: MetricsRoot, limit: int) -> int:
    """``with(exemplars=false)`` turns them off, ``with(exemplars=N)`` caps them; other hints
    (``sample``, ``span_sample``...) need no answer: every stored span is counted, exactly."""
    for name, value in query.hints:
        if name != "exemplars":
            continue
        if value is False or value == "false":
            return 0
        if isinstance(value, int | float) and not isinstance(value, bool):
            return max(0, min(limit, int(value)))
    return limit


def query_range(store: TraceStore, request: MetricsRequest) -> dict[str, Any]:
    """The ``QueryRangeResponse`` document. Thread safe; CPU bound."""
    series, inspected = evaluate_metrics(store, request.query, request.window)
    window = request.window
    documents = []
    for labels, one in _ordered(series):
        # As Tempo's series: a NaN sample (0/0 in arithmetic) is left out, and a series left without
        # samples too; infinities stay (written "Infinity").
        samples = [
            {"timestampMs": str(window.timestamp_ms(i)), "value": value}
            for i, value in sorted(one.samples.items())
            if value == value
        ]
        if not samples:
            continue
        document: dict[str, Any] = {"labels": _labels_json(labels), "samples": samples}
        if one.exemplars and window.max_exemplars:
            document["exemplars"] = [
                {
                    "labels": _labels_json((("trace:id", e.trace_id), ("span:id", e.span_id))),
                    "value": e.value,
                    "timestampMs": str(e.timestamp_ms),
                }
                for e in one.exemplars[: window.max_exemplars]
            ]
        documents.append(document)
    return {"series": documents, "metrics": _metrics_json(inspected)}


def query_instant(store: TraceStore, request: MetricsRequest) -> dict[str, Any]:
    """The ``QueryInstantResponse`` document. Thread safe; CPU bound."""
    series, inspected = evaluate_metrics(store, request.query, request.window)
    documents = [
        {"labels": _labels_json(labels), "value": one.samples[0]}
        for labels, one in _ordered(series)
        if 0 in one.samples and one.samples[0] == one.samples[0]  # NaN: no value, as in range answers
    ]
    return {"series": documents, "metrics": _metrics_json(inspected)}


def _ordered(series: SeriesSet) -> list[tuple[Labels, Any]]:
    return sorted(series.items(), key=lambda item: [(name, str(value)) for name, value in item[0]])


def _labels_json(labels: Labels) -> list[dict[str, Any]]:
    return [{"key": name, "value": {} if value is None else any_value_json(value)} for name, value in labels]


def _metrics_json(inspected: Inspected) -> dict[str, Any]:
    return {
        "inspectedTraces": inspected.traces,
        "inspectedBytes": str(inspected.bytes),
        "inspectedSpans": str(inspected.spans),
        "totalJobs": 1,
        "completedJobs": 1,
    }
