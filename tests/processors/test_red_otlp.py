"""RED metrics as OTLP metrics: exact data points, exemplars, and the periodic exporter's life cycle."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    MetricExportResult,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from hoptrace.processors import (
    LATENCY_BUCKETS,
    PeriodicRedMetricsExport,
    RedMetricsSpanProcessor,
    red_metrics_data,
)
from tests.processors.conftest import CollectingMetricExporter

MS = 1_000_000


def _red_with_spans(durations: Sequence[int]) -> tuple[RedMetricsSpanProcessor, int]:
    red = RedMetricsSpanProcessor()
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    provider.add_span_processor(red)
    last_span_id = 0
    for duration in durations:
        span = provider.get_tracer("t").start_span("op", start_time=0, context=Context())
        span.end(end_time=duration)
        last_span_id = span.get_span_context().span_id
    return red, last_span_id


def test_metrics_data_has_exact_cumulative_values_and_exemplars() -> None:
    red, last_span_id = _red_with_spans([1 * MS, 3 * MS, 3 * MS, 30_000 * MS])
    data = red_metrics_data(red, Resource.create({"service.name": "api"}), start_time_unix_nano=7)

    (resource_metrics,) = data.resource_metrics
    calls, latency = resource_metrics.scope_metrics[0].metrics
    assert (calls.name, latency.name, latency.unit) == (
        "traces_spanmetrics_calls",
        "traces_spanmetrics_latency",
        "s",
    )
    assert isinstance(calls.data, Sum) and isinstance(latency.data, Histogram)
    assert calls.data.is_monotonic and calls.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    (call_point,) = calls.data.data_points
    (point,) = latency.data.data_points
    assert (call_point.value, call_point.start_time_unix_nano) == (4, 7)
    assert point.attributes == {
        "service": "api",
        "span_name": "op",
        "span_kind": "SPAN_KIND_INTERNAL",
        "status_code": "STATUS_CODE_UNSET",
        "tenant": "",
    }
    assert list(point.bucket_counts) == [
        1,
        2,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
    ]  # per bucket, not cumulative
    assert list(point.explicit_bounds) == list(LATENCY_BUCKETS)
    assert (point.count, point.sum) == (4, pytest.approx(30.007))
    assert sorted(e.value for e in point.exemplars) == [0.001, 0.003, 30.0]
    assert last_span_id in {e.span_id for e in point.exemplars}


def test_metrics_data_encodes_to_otlp_protobuf_without_min_max() -> None:
    red, _ = _red_with_spans([1 * MS])
    request = encode_metrics(red_metrics_data(red, Resource.create({}), 0))
    point = request.resource_metrics[0].scope_metrics[0].metrics[1].histogram.data_points[0]
    assert (point.count, point.HasField("min"), point.HasField("max")) == (1, False, False)
    assert len(point.exemplars[0].trace_id) == 16 and len(point.exemplars[0].span_id) == 8


def test_periodic_export_exports_on_demand_and_at_shutdown() -> None:
    red, _ = _red_with_spans([1 * MS])
    exporter = CollectingMetricExporter()
    export = PeriodicRedMetricsExport(red, exporter, interval_seconds=3600)
    assert export.export_now() is True
    export.shutdown()
    export.shutdown()  # idempotent
    assert len(exporter.batches) == 2
    assert exporter.shut_down


def test_failed_exports_are_counted_not_raised() -> None:
    red, _ = _red_with_spans([1 * MS])
    export = PeriodicRedMetricsExport(
        red, CollectingMetricExporter(MetricExportResult.FAILURE), interval_seconds=3600
    )
    assert export.export_now() is False
    export.shutdown()
    assert export.failed_exports == 2


def test_non_positive_interval_is_rejected() -> None:
    with pytest.raises(ValueError, match="interval_seconds"):
        PeriodicRedMetricsExport(RedMetricsSpanProcessor(), CollectingMetricExporter(), interval_seconds=0)
