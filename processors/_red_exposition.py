"""Prometheus exposition of the RED metrics, and the in-process ``/metrics`` endpoint.

prometheus_client does the formats: Prometheus text 0.0.4 by default, OpenMetrics (with exemplars)
when the scraper's ``Accept`` asks for it, gzip when accepted. hoptrace only turns a consistent
snapshot of :class:`RedMetricsSpanProcessor` into metric families, at scrape time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.samples import Exemplar as PromExemplar
from prometheus_client.utils import floatToGoString

from hoptrace.processors._red import LATENCY_BUCKETS, RedMetricsSpanProcessor
from hoptrace.processors._red_labels import OVERFLOW_LABELS
from hoptrace.processors._red_snapshot import SeriesSnapshot
from hoptrace.processors._tenant import invalid_tenants

logger = logging.getLogger(__name__)

CALLS = "traces_spanmetrics_calls"
LATENCY = "traces_spanmetrics_latency"
_BOUNDS = (*(floatToGoString(bound) for bound in LATENCY_BUCKETS), "+Inf")  # type: ignore[no-untyped-call]


class RedMetricsCollector:
    """A prometheus_client collector over one :class:`RedMetricsSpanProcessor`.

    Register it in a ``CollectorRegistry`` (the default one, or your own) to serve Tempo's spanmetrics
    next to an application's metrics. ``collect`` copies the series under the processor's lock, then
    formats without it. Thread-safe.
    """

    def __init__(self, processor: RedMetricsSpanProcessor) -> None:
        self._processor = processor

    def describe(self) -> Iterable[Metric]:
        return self._families([], 0)

    def collect(self) -> Iterable[Metric]:
        return self._families(*self._processor._read())  # one read of a shared directory per scrape

    def _families(self, series: list[SeriesSnapshot], failed_spans: int) -> Iterator[Metric]:
        calls = Metric(CALLS, "Spans ended, by service, span name, kind, status and tenant.", "counter")
        latency = Metric(LATENCY, "Span duration in seconds (Tempo's spanmetrics buckets).", "histogram")
        for one in series:
            labels = dict(one.labels)
            calls.add_sample(CALLS + "_total", labels, one.count)
            for bound, count, exemplar in zip(_BOUNDS, one.bucket_counts, one.exemplars, strict=True):
                prom_exemplar = None
                if exemplar is not None:
                    prom_exemplar = PromExemplar(
                        {"trace_id": exemplar.trace_id, "span_id": exemplar.span_id},
                        exemplar.value,
                        exemplar.timestamp,
                    )
                latency.add_sample(
                    LATENCY + "_bucket", {**labels, "le": bound}, count, exemplar=prom_exemplar
                )
            latency.add_sample(LATENCY + "_count", labels, one.count)
            latency.add_sample(LATENCY + "_sum", labels, one.sum)
        yield calls
        yield latency
        yield _counter(
            "hoptrace_spanmetrics_overflow_spans",
            'Spans measured in the otel_metric_overflow="true" series because the series limit was reached.',
            sum(one.count for one in series if one.labels == OVERFLOW_LABELS),
        )
        yield _counter(
            "hoptrace_spanmetrics_failed_spans",
            "Spans the RED processor could not measure (no start/end time, or an internal error).",
            failed_spans,
        )
        yield _counter(
            "hoptrace_invalid_tenants",
            "Tenant values dropped by validation in this process (never propagated nor used as labels).",
            invalid_tenants.count,
        )


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def red_metrics_registry(processor: RedMetricsSpanProcessor) -> CollectorRegistry:
    """A fresh registry holding only ``processor``'s RED metrics (not prometheus_client's default ones)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RedMetricsCollector(processor))
    return registry


@dataclass(frozen=True)
class MetricsEndpoint:
    """A running ``/metrics`` HTTP endpoint (daemon threads). ``close()`` stops it; idempotent."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join()
        self.server.server_close()


def start_metrics_endpoint(
    processor: RedMetricsSpanProcessor, *, host: str = "127.0.0.1", port: int = 0
) -> MetricsEndpoint:
    """Serve ``processor``'s metrics at ``http://host:port/metrics`` from daemon threads; return at once.

    Port 0 picks a free port (read it from the result). The format follows ``Accept``: OpenMetrics with
    exemplars for ``application/openmetrics-text``, else Prometheus text 0.0.4. Raises ``OSError`` if the
    address cannot be bound. Malformed requests get an HTTP error; the server keeps serving.
    """
    server, thread = start_http_server(port, addr=host, registry=red_metrics_registry(processor))
    if hasattr(os, "register_at_fork"):
        # A forked worker (gunicorn) must not keep the listening socket open: only this process serves it.
        os.register_at_fork(after_in_child=server.socket.close)
    endpoint = MetricsEndpoint(server=server, thread=thread)
    logger.debug("hoptrace: RED metrics served at %s", endpoint.url)
    return endpoint
