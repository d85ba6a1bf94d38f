"""Export the RED metrics as OTLP metrics, next to (or instead of) the Prometheus endpoint.

The series are aggregated by :class:`RedMetricsSpanProcessor`, not by the OpenTelemetry metrics SDK
(too slow on the span hot path), so they cannot go through a ``MeterProvider``. This module turns a
snapshot into the SDK's ``MetricsData`` (cumulative sum + explicit-bucket histogram with exemplars)
and hands it to any ``MetricExporter``, e.g. ``OTLPMetricExporter``, on a period.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import Exemplar as OtelExemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from hoptrace.processors._red import LATENCY_BUCKETS, RedMetricsSpanProcessor
from hoptrace.processors._red_snapshot import Exemplar, SeriesSnapshot

logger = logging.getLogger(__name__)

SCOPE = InstrumentationScope("hoptrace.processors.red")


def red_metrics_data(
    processor: RedMetricsSpanProcessor, resource: Resource, start_time_unix_nano: int
) -> MetricsData:
    """Return ``processor``'s series as cumulative OTLP ``traces_spanmetrics_calls`` and
    ``traces_spanmetrics_latency`` (seconds; per-bucket counts, Tempo's bounds; exemplars). Only this
    process's series, also when the processor shares a directory with other processes: each exports its
    own, under its own resource, and the metrics backend sums them. Thread-safe."""
    now = time.time_ns()
    series = processor.local_snapshot()
    calls = Sum(
        data_points=[
            NumberDataPoint(dict(one.labels), start_time_unix_nano, now, one.count) for one in series
        ],
        aggregation_temporality=AggregationTemporality.CUMULATIVE,
        is_monotonic=True,
    )
    latency = Histogram(
        data_points=[_histogram_point(one, start_time_unix_nano, now) for one in series],
        aggregation_temporality=AggregationTemporality.CUMULATIVE,
    )
    metrics = [
        Metric("traces_spanmetrics_calls", "Spans ended.", "1", calls),
        Metric("traces_spanmetrics_latency", "Span duration.", "s", latency),
    ]
    scope_metrics = ScopeMetrics(scope=SCOPE, metrics=metrics, schema_url="")
    return MetricsData([ResourceMetrics(resource=resource, scope_metrics=[scope_metrics], schema_url="")])


def _histogram_point(one: SeriesSnapshot, start: int, now: int) -> HistogramDataPoint:
    cumulative = one.bucket_counts
    per_bucket = [cumulative[0], *(b - a for a, b in itertools.pairwise(cumulative))]
    return HistogramDataPoint(
        attributes=dict(one.labels),
        start_time_unix_nano=start,
        time_unix_nano=now,
        count=one.count,
        sum=one.sum,
        bucket_counts=per_bucket,
        explicit_bounds=list(LATENCY_BUCKETS),
        min=None,  # type: ignore[arg-type]  # not tracked (hot path); None leaves the OTLP field unset
        max=None,  # type: ignore[arg-type]
        exemplars=[_exemplar(e) for e in one.exemplars if e is not None],
    )


def _exemplar(exemplar: Exemplar) -> OtelExemplar:
    return OtelExemplar(
        filtered_attributes={},
        value=exemplar.value,
        time_unix_nano=exemplar.time_unix_nano,
        span_id=int(exemplar.span_id, 16),
        trace_id=int(exemplar.trace_id, 16),
    )


class PeriodicRedMetricsExport:
    """Exports ``processor``'s RED metrics through ``exporter`` every ``interval_seconds``, from a daemon
    thread, and once more at :meth:`shutdown`. ``exporter`` may be a factory, called on first export.
    Export failures are logged once and counted in :attr:`failed_exports`, never raised. Raises
    ``ValueError`` for a non-positive interval."""

    def __init__(
        self,
        processor: RedMetricsSpanProcessor,
        exporter: MetricExporter | Callable[[], MetricExporter],
        *,
        resource: Resource | None = None,
        interval_seconds: float = 60.0,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, not {interval_seconds}")
        self._processor = processor
        self._exporter: MetricExporter | None = exporter if isinstance(exporter, MetricExporter) else None
        self._factory = exporter
        self._resource = resource if resource is not None else Resource.create()
        self._interval = interval_seconds
        self._start = time.time_ns()
        self._stop = threading.Event()
        self._export_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hoptrace-red-otlp", daemon=True)
        self.failed_exports = 0
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.export_now()

    def export_now(self) -> bool:
        """Export the current values now; return whether the exporter succeeded. Never raises."""
        with self._export_lock:
            try:
                if self._exporter is None:  # built here, off the start-up path (gRPC/HTTP imports are slow)
                    self._exporter = self._factory()  # type: ignore[operator]
                data = red_metrics_data(self._processor, self._resource, self._start)
                ok = self._exporter.export(data) is MetricExportResult.SUCCESS
            except Exception:
                logger.debug("hoptrace: RED metrics OTLP export raised", exc_info=True)
                ok = False
            if not ok:
                self.failed_exports += 1
                if self.failed_exports == 1:
                    logger.warning("hoptrace: RED metrics OTLP export failed; further failures are counted")
            return ok

    def shutdown(self) -> None:
        """Stop the thread, export a last time, shut the exporter down. Idempotent; blocks until done."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self.export_now()
        if self._exporter is not None:
            self._exporter.shutdown()
