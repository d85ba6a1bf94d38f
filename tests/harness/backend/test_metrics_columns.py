"""TraceQL metrics from the span columns yield exactly what the general evaluator yields from decoded
traces, for every shape the columns answer, on data built to tell them apart: traces arriving in
several requests (later spans starting earlier), exporter retries (byte-identical repeats), equal start
times, evicted traces, spans without a service, odd kinds, zero and negative durations."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from hoptrace.harness.backend import _metrics_engine, _span_columns
from hoptrace.harness.backend._metrics_columns import gather_from_columns
from hoptrace.harness.backend._metrics_engine import Inspected, MetricsWindow, evaluate_metrics
from hoptrace.harness.backend._metrics_series import SeriesSet
from hoptrace.harness.backend._store import SpanOrigin, StoreLimits, TraceStore
from hoptrace.harness.traceql import MetricsQuery, parse_metrics_query

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S

COVERED = [
    "{ } | rate()",
    "{ } | rate() by (resource.service.name)",
    "{ } | count_over_time() by (name, kind)",
    "{ } | count_over_time() by (status, resource.service.name)",
    "{ status = error } | rate()",
    '{ resource.service.name = "svc-3" && status = error } | rate()',
    '{ resource.service.name =~ "svc-[12]" } | rate() by (name)',
    '{ name != "GET /a" || kind = server } | count_over_time()',
    '{ resource.service.name != "svc-1" } | count_over_time() by (resource.service.name)',
    "{ true } | rate()",
    "{ duration > 5ms } | rate() by (resource.service.name)",
    "{ duration >= 1ms && duration < 20ms && kind = client } | count_over_time()",
    "{ 3ms < duration } | rate()",
    "{ duration > 1500000.5 } | count_over_time()",
    "{ duration = 0 } | count_over_time()",
    "{ duration != 0ms } | count_over_time() by (kind)",
    "{ } | quantile_over_time(duration, .5, .9, .99) by (resource.service.name)",
    "{ status != error } | quantile_over_time(duration, .9)",
    "{ } | histogram_over_time(duration) by (resource.service.name)",
    "{ } | histogram_over_time(duration)",
    "{ } | min_over_time(duration) by (name)",
    "{ } | max_over_time(duration)",
    "{ } | avg_over_time(duration) by (kind)",
    "{ } | sum_over_time(duration) by (status)",
    "{ } | rate() by (resource.service.name) | topk(2)",
    "{ } | count_over_time() by (name) > 3",
]
DECLINED = [
    "{ span.tenant = 1 } | rate()",
    "{ } | rate() by (span.tenant)",
    '{ duration > 1ms || name = "x" } | rate()',
    "{ } | avg_over_time(span.size)",
    "{ } >> { } | rate()",
]


def _origin(service: Any) -> SpanOrigin:
    resource = Resource()
    if isinstance(service, str):
        resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    elif service is not None:
        resource.attributes.append(KeyValue(key="service.name", value=AnyValue(int_value=service)))
    scope = InstrumentationScope(name="t").SerializeToString()
    return SpanOrigin(resource.SerializeToString(), "", scope, "")


def _fill(store: TraceStore, rng: random.Random, traces: int) -> None:
    origins = [_origin(f"svc-{n}") for n in range(5)] + [_origin(None), _origin(7)]
    names = ["GET /a", "GET /b", "SELECT", "publish", "x" * 40]
    later: list[tuple[bytes, SpanOrigin, bytes]] = []
    for number in range(traces):
        trace_id = rng.randbytes(16)
        start = T0 + rng.randrange(600) * S + rng.randrange(S)
        batch = []
        for index in range(rng.randint(1, 8)):
            span_start = start + rng.choice([0, 0, 1, index * 1000, -index * 1000])
            duration = rng.choice([0, 1, 2, 3, 1024, 2**20 + 1, 2**22, 2**54, rng.randrange(40 * MS), -5])
            span = PbSpan(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                name=rng.choice(names),
                kind=rng.choice([0, 1, 2, 3, 4, 5, 9]),
                start_time_unix_nano=span_start,
                end_time_unix_nano=span_start + duration,
                status=Status(code=rng.choice([0, 0, 1, 2, 7])),
            )
            record = (trace_id, rng.choice(origins), span.SerializeToString())
            (later if rng.random() < 0.2 else batch).append(record)
            if rng.random() < 0.1:
                later.append(record)  # an exporter's retry, byte for byte
        if batch:
            store.add(batch)
        if number % 10 == 9:
            store.add(later)
            later = []
    if later:
        store.add(later)


def _store(seed: int) -> TraceStore:
    # Small enough that the oldest traces are evicted, which the columns must forget.
    store = TraceStore(StoreLimits(max_spans=1_200, min_retention_seconds=0))
    _fill(store, random.Random(seed), 400)
    assert store.stats().evicted_traces > 0
    return store


def _comparable(series: SeriesSet) -> list[Any]:
    def number(value: Any) -> Any:
        return "nan" if isinstance(value, float) and math.isnan(value) else (type(value).__name__, value)

    return [
        (
            [(name, number(value)) for name, value in labels],
            sorted((i, number(v)) for i, v in one.samples.items()),
            [
                (
                    e.trace_id,
                    e.span_id,
                    number(e.value),
                    e.timestamp_ms,
                    [(k, number(v)) for k, v in e.labels],
                )
                for e in one.exemplars
            ],
        )
        for labels, one in series.items()
    ]


def _general(store: TraceStore, query: str, window: MetricsWindow, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patched:
        patched.setattr(_metrics_engine, "gather_from_columns", lambda *_: None)
        return evaluate_metrics(store, parse_metrics_query(query), window)


WINDOWS = [
    MetricsWindow(T0, T0 + 600 * S, 60 * S),
    MetricsWindow(T0 + 90 * S, T0 + 400 * S, 7 * S, max_exemplars=3),
    MetricsWindow(T0 - 5 * S, T0 + 700 * S, 705 * S, max_exemplars=0),
]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("query", COVERED)
def test_the_columns_yield_what_the_general_evaluator_yields(
    seed: int, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(seed)
    metrics = parse_metrics_query(query)
    assert isinstance(metrics.expression, MetricsQuery)
    for window in WINDOWS:
        assert gather_from_columns(store, metrics.expression, window, Inspected()) is not None
        fast, _ = evaluate_metrics(store, metrics, window)
        general, _ = _general(store, query, window, monkeypatch)
        assert _comparable(fast) == _comparable(general), (query, window)
        assert fast or "duration = 0" in query


def test_unfiltered_queries_report_what_the_general_evaluator_inspected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _store(3)
    window = WINDOWS[1]
    _, fast = evaluate_metrics(store, parse_metrics_query("{ } | rate()"), window)
    _, general = _general(store, "{ } | rate()", window, monkeypatch)
    assert fast == general
    assert fast.traces > 0


@pytest.mark.parametrize("query", DECLINED)
def test_other_shapes_are_left_to_the_general_evaluator(query: str) -> None:
    store = _store(4)
    metrics = parse_metrics_query(query)
    assert isinstance(metrics.expression, MetricsQuery)
    assert gather_from_columns(store, metrics.expression, WINDOWS[0], Inspected()) is None
    series, _ = evaluate_metrics(store, metrics, WINDOWS[0])
    assert isinstance(series, dict)


def test_the_columns_follow_new_spans_and_evictions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_span_columns, "_COMPACT_AFTER", 100)
    store = TraceStore(StoreLimits(max_spans=1_200, min_retention_seconds=0))
    rng = random.Random(5)
    query = parse_metrics_query("{ } | count_over_time()")
    window = MetricsWindow(T0 - S, T0 + 601 * S, 602 * S)

    def total() -> float:
        series, _ = evaluate_metrics(store, query, window)
        return sum(sum(one.samples.values()) for one in series.values())

    _fill(store, rng, 50)
    first = total()
    assert first == store.stats().spans - _repeats(store)
    _fill(store, rng, 2_000)  # evicts most of the first traces, and compacts the columns
    assert total() == store.stats().spans - _repeats(store)


def _repeats(store: TraceStore) -> int:
    return sum(len(records) - len({span for _, span in records}) for _, records in store.snapshot())
