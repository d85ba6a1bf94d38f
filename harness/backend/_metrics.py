"""The backend's ``/metrics``: its own counters and the service-graph metrics, via prometheus_client.

prometheus_client writes the exposition formats (text 0.0.4, or OpenMetrics when the scraper asks);
this collector turns consistent snapshots of the receiver, store and service graph into metric
families at scrape time, so the ingest path never touches a metrics object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response

from hoptrace.harness.backend._client_bounds import GuardCounters
from hoptrace.harness.backend._decode import truncations
from hoptrace.harness.backend._forwarder import OtlpForwarder
from hoptrace.harness.backend._log_once import suppressed
from hoptrace.harness.backend._persistence import RequestLog
from hoptrace.harness.backend._receiver import Receiver
from hoptrace.harness.backend._service_graph import LATENCY_BUCKETS, EdgeLabels, Histogram, ServiceGraph
from hoptrace.harness.backend._store import TraceStore

_EDGE_LABELS = ["client", "server", "connection_type"]
_BOUNDS = [*(floatToGoString(bound) for bound in LATENCY_BUCKETS), "+Inf"]  # type: ignore[no-untyped-call]


class BackendCollector:
    """A prometheus_client collector over one backend's receiver, store and service graph."""

    def __init__(
        self,
        receiver: Receiver,
        store: TraceStore,
        graph: ServiceGraph,
        forwarder: Callable[[], OtlpForwarder | None] = lambda: None,
        persistence: Callable[[], RequestLog | None] = lambda: None,
        closed_connections: Callable[[], GuardCounters | None] = lambda: None,
    ) -> None:
        self._closed_connections = closed_connections
        self._persistence = persistence
        self._receiver = receiver
        self._store = store
        self._graph = graph
        self._forwarder = forwarder

    def collect(self) -> Iterator[Metric]:
        counters = self._receiver.counters()
        stats = self._store.stats()
        yield _counter(
            "hoptrace_backend_spans_received", "Spans accepted and stored.", counters.spans_accepted
        )
        yield _counter(
            "hoptrace_backend_spans_rejected",
            "Invalid spans rejected through OTLP partial_success.",
            counters.spans_rejected,
        )
        yield _counter(
            "hoptrace_backend_spans_refused",
            "Spans of whole requests refused (store full or request too large); senders retry or drop them.",
            counters.spans_refused,
        )
        requests = CounterMetricFamily(
            "hoptrace_backend_requests", "OTLP export requests by outcome.", labels=["outcome"]
        )
        failed = (
            counters.requests_invalid
            + counters.requests_too_large
            + counters.requests_store_full
            + counters.requests_unavailable
        )
        requests.add_metric(["ok"], counters.requests - failed)
        requests.add_metric(["invalid"], counters.requests_invalid)
        requests.add_metric(["too_large"], counters.requests_too_large)
        requests.add_metric(["store_full"], counters.requests_store_full)
        requests.add_metric(["unavailable"], counters.requests_unavailable)
        yield requests
        yield _counter(
            "hoptrace_backend_values_truncated",
            "Attribute values, attribute lists, arrays, events or links cut to the decode limits while "
            "decoding stored spans for queries (process-wide; see the README's limits).",
            truncations(),
        )
        yield _counter(
            "hoptrace_backend_query_timeouts",
            "Search and tag queries answered 504 because they ran past the query timeout.",
            self._store.query_gate.timeouts(),
        )
        yield _counter("hoptrace_backend_spans_evicted", "Spans evicted to make room.", stats.evicted_spans)
        yield _counter(
            "hoptrace_backend_traces_evicted", "Traces evicted to make room.", stats.evicted_traces
        )
        yield GaugeMetricFamily("hoptrace_backend_traces_stored", "Traces in the store.", value=stats.traces)
        yield GaugeMetricFamily("hoptrace_backend_spans_stored", "Spans in the store.", value=stats.spans)
        yield GaugeMetricFamily(
            "hoptrace_backend_stored_bytes", "Approximate bytes the stored spans take.", value=stats.bytes
        )
        forwarder = self._forwarder()
        if forwarder is not None:
            forwarded = forwarder.counters()
            family = CounterMetricFamily(
                "hoptrace_backend_forward_requests",
                f"Requests teed to {forwarder.url} by outcome (failed: given up after retries).",
                labels=["outcome"],
            )
            family.add_metric(["sent"], forwarded.sent)
            family.add_metric(["failed"], forwarded.failed)
            family.add_metric(["dropped"], forwarded.dropped)
            yield family
            yield GaugeMetricFamily(
                "hoptrace_backend_forward_queued_bytes",
                "Bytes waiting to be forwarded.",
                value=forwarded.queued_bytes,
            )
        persistence = self._persistence()
        if persistence is not None:
            log = persistence.stats()
            yield _counter(
                "hoptrace_backend_log_requests",
                f"Requests written to the request log in {persistence.directory} before acknowledging them.",
                log.appended_requests,
            )
            yield _counter(
                "hoptrace_backend_log_written_bytes", "Bytes written to the request log.", log.appended_bytes
            )
            yield _counter(
                "hoptrace_backend_log_refused_requests",
                "Requests answered 503/UNAVAILABLE because the disk could not keep up.",
                log.refused_requests,
            )
            yield _counter("hoptrace_backend_log_compactions", "Request log compactions.", log.compactions)
            yield GaugeMetricFamily(
                "hoptrace_backend_log_disk_bytes",
                "Bytes the request log takes on disk.",
                value=log.disk_bytes,
            )
        closed = self._closed_connections()
        if closed is not None:
            family = CounterMetricFamily(
                "hoptrace_backend_http_connections_closed",
                "HTTP connections the backend closed to bound its clients, by reason.",
                labels=["reason"],
            )
            family.add_metric(["evicted_waiting"], closed.evicted)
            family.add_metric(["refused_busy"], closed.refused)
            family.add_metric(["timed_out"], closed.timed_out)
            yield family
        logs = CounterMetricFamily(
            "hoptrace_backend_log_suppressed",
            "Log records about client requests not written because the same message was logged before.",
            labels=["logger"],
        )
        for name, count in sorted(suppressed().items()):
            logs.add_metric([name], count)
        yield logs
        yield from self._service_graph()

    def _service_graph(self) -> Iterator[Metric]:
        graph = self._graph.snapshot()
        yield _edge_counter("traces_service_graph_request", "Requests between two nodes.", graph.requests)
        yield _edge_counter(
            "traces_service_graph_request_failed", "Failed requests between two nodes.", graph.failed
        )
        yield _edge_histogram(
            "traces_service_graph_request_server_seconds",
            "Server-side request durations.",
            graph.server_seconds,
        )
        yield _edge_histogram(
            "traces_service_graph_request_client_seconds",
            "Client-side request durations.",
            graph.client_seconds,
        )
        yield _edge_histogram(
            "traces_service_graph_request_messaging_system_seconds",
            "Time between a producer span's end and its consumer span's start.",
            graph.messaging_seconds,
        )
        yield _edge_counter(
            "traces_service_graph_unpaired_spans",
            "Spans whose other side never arrived in time.",
            graph.unpaired,
        )
        yield _counter(
            "traces_service_graph_dropped_spans",
            "Spans not paired because too many edges were open.",
            graph.dropped_spans,
        )
        yield _counter(
            "hoptrace_backend_service_graph_overflowed_edges",
            'Edges measured in the overflow series (client and server "__overflow__") because the '
            "service graph already had its maximum number of series.",
            graph.overflowed_edges,
        )


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _edge_counter(name: str, documentation: str, values: dict[EdgeLabels, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=_EDGE_LABELS)
    for labels, value in sorted(values.items()):
        family.add_metric(list(labels), value)
    return family


def _edge_histogram(
    name: str, documentation: str, values: dict[EdgeLabels, Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=_EDGE_LABELS)
    for labels, histogram in sorted(values.items()):
        cumulative, buckets = 0, []
        for bound, count in zip(_BOUNDS, histogram.counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        family.add_metric(list(labels), buckets, histogram.total)
    return family


def metrics_endpoint(collector: BackendCollector) -> Callable[[Request], Response]:
    """A ``/metrics`` handler serving ``collector`` in the format the scraper accepts."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    def serve(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    return serve
