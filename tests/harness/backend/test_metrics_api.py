"""``/api/metrics/query_range`` and ``/api/metrics/query``: TraceQL metrics with Tempo's parameters and
response shapes, checked field by field, as Grafana asks for them."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import pytest
from opentelemetry.trace import Status, StatusCode

from .conftest import ServiceFactory

MS = 1_000_000
S = 1_000_000_000


def _send(service: ServiceFactory) -> int:
    """Five spans over two minutes; returns the first minute's start (unix seconds, minute aligned)."""
    base = (int(time.time()) // 60) * 60 - 600
    api = service("api", "grpc").get_tracer("api")
    db = service("db", "http").get_tracer("db")
    for tracer, name, offset_s, duration_ms, failed in (
        (api, "GET /a", 5, 100, False),
        (api, "GET /a", 10, 300, True),
        (api, "GET /b", 65, 50, False),
        (db, "SELECT", 70, 10, False),
        (db, "SELECT", 75, 20, False),
    ):
        start = (base + offset_s) * S
        span = tracer.start_span(name, start_time=start)
        if failed:
            span.set_status(Status(StatusCode.ERROR))
        span.end(start + duration_ms * MS)
    return base


def _range(tempo: httpx.Client, query: str, base: int, **extra: str) -> list[dict[str, Any]]:
    params = {"q": query, "start": str(base), "end": str(base + 120), "step": "60s", **extra}
    response = tempo.get("/api/metrics/query_range", params=params)
    assert response.status_code == 200, response.text
    document = response.json()
    assert set(document) == {"series", "metrics"}
    assert {"inspectedTraces", "inspectedBytes", "inspectedSpans", "totalJobs", "completedJobs"} <= set(
        document["metrics"]
    )
    series: list[dict[str, Any]] = document["series"]
    return series


def _label_value(value: dict[str, Any]) -> object:
    (kind, raw) = next(iter(value.items())) if value else ("", None)
    return float(raw) if kind == "doubleValue" else raw


def _by_labels(
    series: list[dict[str, Any]], base: int
) -> dict[tuple[tuple[str, object], ...], dict[int, float]]:
    """{labels: {seconds after base: value}}."""
    result = {}
    for one in series:
        labels = tuple((label["key"], _label_value(label["value"])) for label in one["labels"])
        result[labels] = {
            int(sample["timestampMs"]) // 1000 - base: sample["value"] for sample in one["samples"]
        }
    return result


def test_grafana_frontend_request_gets_tempos_range_shape(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    base = _send(service)
    # Grafana's frontend (handleTraceQlMetricsQuery) sends query, start and end in unix seconds, no step.
    response = tempo.get(
        "/api/metrics/query_range",
        params={"query": "{ } | rate() by (resource.service.name)", "start": base, "end": base + 120},
    )

    assert response.status_code == 200, response.text
    series = response.json()["series"]
    assert {s["labels"][0]["key"] for s in series} == {"resource.service.name"}
    for one in series:
        (label,) = one["labels"]
        assert set(label["value"]) == {"stringValue"}
        for sample in one["samples"]:
            assert set(sample) == {"timestampMs", "value"}
            assert isinstance(sample["timestampMs"], str) and int(sample["timestampMs"]) % 1000 == 0
            assert isinstance(sample["value"], float)
        for exemplar in one.get("exemplars", []):
            assert set(exemplar) == {"labels", "value", "timestampMs"}
            assert [label["key"] for label in exemplar["labels"]] == ["trace:id", "span:id"]
            assert exemplar["value"] == "NaN"  # rate's exemplars carry no value, as Tempo's
    counts = {s["labels"][0]["value"]["stringValue"]: sum(x["value"] for x in s["samples"]) for s in series}
    step_seconds = 1  # Tempo's default step: a 240th of the range, at least a second (ranges over a minute)
    assert counts == pytest.approx({"api": 3 / step_seconds, "db": 2 / step_seconds})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "{ } | rate() by (resource.service.name)",
            {
                (("resource.service.name", "api"),): {0: 2 / 60, 60: 1 / 60},
                (("resource.service.name", "db"),): {0: 0.0, 60: 2 / 60},
            },
        ),
        ("{ } | count_over_time()", {(("__name__", "count_over_time"),): {0: 2.0, 60: 3.0}}),
        (
            # Tempo's power-of-two buckets (see _log2_histogram): 100 ms counts in 2**27 ns, 300 ms in
            # 2**29 ns, 50 ms in 2**26 ns; a rank that ends a bucket reads that bucket's bound.
            '{ resource.service.name = "api" } | quantile_over_time(duration, .5, 1)',
            {
                (("__name__", "quantile_over_time"), ("p", 0.5)): {0: 2**27 / 1e9, 60: 2**26 / 1e9},
                (("__name__", "quantile_over_time"), ("p", 1.0)): {0: 2**29 / 1e9, 60: 2**26 / 1e9},
            },
        ),
        (
            # An interval without values reads 0, as in Tempo's series.
            '{ resource.service.name = "db" } | quantile_over_time(duration, .5)',
            {(("__name__", "quantile_over_time"), ("p", 0.5)): {0: 0.0, 60: 2**24 / 1e9}},
        ),
        (
            "{ } | max_over_time(duration) by (name)",
            {
                (("name", "GET /a"),): {0: 0.3},
                (("name", "GET /b"),): {60: 0.05},
                (("name", "SELECT"),): {60: 0.02},
            },
        ),
        ("{ } | min_over_time(duration)", {(("__name__", "min_over_time"),): {0: 0.1, 60: 0.01}}),
        ("{ } | avg_over_time(duration)", {(("__name__", "avg_over_time"),): {0: 0.2, 60: 0.08 / 3}}),
        (
            "{ kind = internal } | sum_over_time(duration)",
            {(("__name__", "sum_over_time"),): {0: 0.4, 60: 0.08}},
        ),
        (
            '{ resource.service.name = "db" } | histogram_over_time(duration)',
            {
                (("__name__", "histogram_over_time"), ("__bucket", 2**24 / 1e9)): {0: 0.0, 60: 1.0},
                (("__name__", "histogram_over_time"), ("__bucket", 2**25 / 1e9)): {0: 0.0, 60: 1.0},
            },
        ),
        (
            # In arithmetic an interval without spans has no value (NaN, left out): no error in the second
            # minute gives no ratio there, not 0.
            "({ status = error } | count_over_time()) / ({ } | count_over_time())",
            {(("__name__", "count_over_time"),): {0: 0.5}},
        ),
        (
            # A side without by() applies to every series of the other side.
            "({ } | count_over_time() by (resource.service.name)) / ({ } | count_over_time())",
            {
                (("resource.service.name", "api"),): {0: 1.0, 60: 1 / 3},
                (("resource.service.name", "db"),): {60: 2 / 3},
            },
        ),
        (
            "({ } | rate()) + ({ } | count_over_time())",
            {(("__name__", "rate"),): {0: 2 / 60 + 2, 60: 3 / 60 + 3}},
        ),
        (
            "{ } | rate() by (resource.service.name) | topk(1)",
            {
                (("resource.service.name", "api"),): {0: 2 / 60},
                (("resource.service.name", "db"),): {60: 2 / 60},
            },
        ),
        (
            # Arithmetic, then more second stages: bottomk keeps the smaller series at each step (db has
            # no value in the first minute), the filter keeps what is above 2.
            "({ } | count_over_time() by (resource.service.name)) * 2 | bottomk(1) > 2",
            {(("resource.service.name", "api"),): {0: 4.0}},
        ),
        (
            "{ } | count_over_time() by (resource.service.name) > 1",
            {(("resource.service.name", "api"),): {0: 2.0}, (("resource.service.name", "db"),): {60: 2.0}},
        ),
    ],
)
def test_metrics_functions_compute_tempos_series(
    service: ServiceFactory, tempo: httpx.Client, query: str, expected: dict[Any, dict[int, float]]
) -> None:
    base = _send(service)

    got = _by_labels(_range(tempo, query, base), base)

    assert got.keys() == expected.keys()
    for labels, samples in expected.items():
        assert got[labels] == pytest.approx(samples), labels


def test_non_finite_samples_are_left_out_or_spelled_as_tempo_does(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    base = _send(service)
    js = service("js", "http").get_tracer("js")  # the OpenTelemetry JS SDK exports such doubles
    for offset_s, ratio in ((5, math.inf), (65, math.nan)):
        start = (base + offset_s) * S
        js.start_span("ratio", start_time=start, attributes={"ratio": ratio}).end(start + MS)
    db = '({ resource.service.name = "db" } | count_over_time())'

    (self_ratio,) = _range(tempo, f"{db} / {db}", base)
    (ratios,) = _range(tempo, '{ name = "ratio" } | max_over_time(span.ratio)', base)

    assert [(int(s["timestampMs"]) // 1000 - base, s["value"]) for s in self_ratio["samples"]] == [(60, 1.0)]
    # The NaN maximum is left out, as Tempo's series leave NaN out; +Inf in protobuf JSON's spelling.
    assert [(int(s["timestampMs"]) // 1000 - base, s["value"]) for s in ratios["samples"]] == [
        (0, "Infinity")
    ]
    assert _range(tempo, f"{db} / 0", base) == []  # a division by zero is NaN: no sample, no series
    instant = tempo.get("/api/metrics/query", params={"q": f"{db} / 0", "start": base, "end": base + 120})
    assert instant.json()["series"] == []


def test_exemplars_point_at_spans_and_follow_hints(service: ServiceFactory, tempo: httpx.Client) -> None:
    base = _send(service)

    (with_exemplars,) = _range(tempo, '{ name = "GET /a" } | max_over_time(duration)', base)
    (without,) = _range(tempo, '{ name = "GET /a" } | max_over_time(duration) with(exemplars=false)', base)
    (capped,) = _range(tempo, "{ } | count_over_time()", base, exemplars="1")

    (exemplar,) = with_exemplars["exemplars"]
    labels = {label["key"]: label["value"]["stringValue"] for label in exemplar["labels"]}
    assert len(labels["trace:id"]) == 32 and len(labels["span:id"]) == 16
    assert exemplar["value"] == pytest.approx(0.1)
    assert int(exemplar["timestampMs"]) == (base + 5) * 1000
    assert "exemplars" not in without
    assert len(capped["exemplars"]) == 1


def test_compare_splits_selection_from_baseline(service: ServiceFactory, tempo: httpx.Client) -> None:
    base = _send(service)

    got = _by_labels(_range(tempo, "{ } | compare({ status = error })", base), base)

    assert got[(("__meta_type", "selection"), ("name", "GET /a"))] == {0: 1.0}
    assert got[(("__meta_type", "baseline"), ("name", "SELECT"))] == {60: 2.0}
    assert got[(("__meta_type", "baseline_total"), ("name", None))] == {0: 1.0, 60: 3.0}
    assert got[(("__meta_type", "selection_total"), ("resource.service.name", None))] == {0: 1.0}


def test_compare_selects_only_inside_its_time_window(service: ServiceFactory, tempo: httpx.Client) -> None:
    base = _send(service)
    # Selection window (base + 60 s, base + 72 s]: GET /b (65 s) and the first SELECT (70 s).
    start, end = (base + 60) * S, (base + 72) * S

    got = _by_labels(_range(tempo, f"{{ }} | compare({{ true }}, 10, {start}, {end})", base), base)

    assert got[(("__meta_type", "selection"), ("name", "GET /b"))] == {60: 1.0}
    assert got[(("__meta_type", "selection"), ("name", "SELECT"))] == {60: 1.0}
    assert got[(("__meta_type", "baseline"), ("name", "SELECT"))] == {60: 1.0}
    assert got[(("__meta_type", "baseline"), ("name", "GET /a"))] == {0: 2.0}
    assert got[(("__meta_type", "selection_total"), ("name", None))] == {60: 2.0}


def test_instant_query_has_tempos_shape(service: ServiceFactory, tempo: httpx.Client) -> None:
    base = _send(service)

    response = tempo.get(
        "/api/metrics/query",
        params={
            "query": "{ } | count_over_time() by (resource.service.name)",
            "start": base,
            "end": base + 120,
        },
    )

    assert response.status_code == 200, response.text
    document = response.json()
    assert set(document) == {"series", "metrics"}
    values = {s["labels"][0]["value"]["stringValue"]: s["value"] for s in document["series"]}
    assert values == {"api": 3.0, "db": 2.0}
    assert all(set(s) == {"labels", "value"} for s in document["series"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "{ } | rate("}, "line 1, column 11"),
        ({"q": "{ status = error }"}, "needs a metrics function"),
        ({}, "missing the TraceQL metrics query"),
        ({"q": "{ } | rate()", "step": "soon"}, "invalid step"),
        ({"q": "{ } | rate()", "start": "yesterday"}, "invalid start"),
        ({"q": "{ } | rate()", "start": "1700000100", "end": "1700000000"}, "must be after start"),
        ({"q": "{ } | rate()", "step": "1ms", "since": "1h"}, "step is too small"),
        ({"q": "{ } | rate()", "exemplars": "lots"}, "invalid exemplars"),
    ],
)
def test_bad_metrics_requests_are_400_with_a_reason(
    tempo: httpx.Client, params: dict[str, str], message: str
) -> None:
    response = tempo.get("/api/metrics/query_range", params=params)
    assert response.status_code == 400
    assert message in response.text
    assert tempo.get("/api/metrics/query", params={"q": "{ } |"}).status_code == 400
    assert tempo.get("/ready").status_code == 200
