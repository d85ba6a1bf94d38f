"""Service-graph metrics on ``/metrics``: Tempo's names, labels and pairing rules, exact counts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client.parser import text_string_to_metric_families

import hoptrace.harness.backend._service_graph as service_graph_module
from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.harness.backend._service_graph import MAX_PENDING_SPANS, OVERFLOW_EDGE, ServiceGraph
from hoptrace.harness.backend._store import SpanOrigin

from .conftest import ServiceFactory

MS = 1_000_000


@pytest.fixture
def backend() -> Iterator[EmbeddedBackend]:
    # No wait: an edge still open when /metrics is scraped counts as unpaired at once.
    with EmbeddedBackend(service_graph_wait_seconds=0) as running:
        yield running


def _samples(backend: EmbeddedBackend) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{backend.http_url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _edge(client: str, server: str, connection_type: str = "") -> tuple[tuple[str, str], ...]:
    return (("client", client), ("connection_type", connection_type), ("server", server))


def _le(edge: tuple[tuple[str, str], ...], bound: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*edge, ("le", bound))))


def _send_topology(service: ServiceFactory, requests: int) -> None:
    """user -> api -> inventory (fails once), api -> worker over a queue, worker -> orders DB,
    api -> payments (uninstrumented peer), plus an inventory server span under an internal span."""
    api = service("api", "grpc").get_tracer("api")
    inventory = service("inventory", "http").get_tracer("inventory")
    worker = service("worker", "grpc").get_tracer("worker")
    for index in range(requests):
        t0 = 1_700_000_000_000 * MS + index * 1000 * MS
        with api.start_as_current_span(
            "GET /orders", kind=SpanKind.SERVER, start_time=t0, end_on_exit=False
        ) as root:
            client = api.start_span("GET stock", kind=SpanKind.CLIENT, start_time=t0 + 1 * MS)
            server = inventory.start_span(
                "GET /stock", trace.set_span_in_context(client), kind=SpanKind.SERVER, start_time=t0 + 2 * MS
            )
            if index == 0:
                server.set_status(Status(StatusCode.ERROR))
            server.end(t0 + 152 * MS)
            client.end(t0 + 160 * MS)
            producer = api.start_span("orders send", kind=SpanKind.PRODUCER, start_time=t0 + 170 * MS)
            producer.end(t0 + 171 * MS)
            consumer = worker.start_span(
                "orders process",
                trace.set_span_in_context(producer),
                kind=SpanKind.CONSUMER,
                start_time=t0 + 471 * MS,
            )
            database = worker.start_span(
                "INSERT orders",
                trace.set_span_in_context(consumer),
                kind=SpanKind.CLIENT,
                start_time=t0 + 472 * MS,
                attributes={"db.system": "postgresql", "db.name": "orders"},
            )
            database.end(t0 + 475 * MS)
            consumer.end(t0 + 480 * MS)
            payments = api.start_span(
                "POST /charge",
                kind=SpanKind.CLIENT,
                start_time=t0 + 500 * MS,
                attributes={"peer.service": "payments"},
            )
            payments.end(t0 + 600 * MS)
            root.end(t0 + 700 * MS)
        internal = inventory.start_span("refresh cache", kind=SpanKind.INTERNAL, start_time=t0)
        orphan_server = inventory.start_span(
            "GET /cache", trace.set_span_in_context(internal), kind=SpanKind.SERVER, start_time=t0
        )
        orphan_server.end(t0 + 1 * MS)
        internal.end(t0 + 2 * MS)


@pytest.mark.parametrize("pending_bound", [MAX_PENDING_SPANS, 1])
def test_service_graph_counts_edges_with_tempos_rules(
    service: ServiceFactory, backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch, pending_bound: int
) -> None:
    # With a bound of 1 the spans are paired on the ingest threads as they arrive, not at the scrape.
    monkeypatch.setattr(service_graph_module, "MAX_PENDING_SPANS", pending_bound)
    _send_topology(service, requests=3)

    samples = _samples(backend)

    requests = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "traces_service_graph_request_total"
    }
    assert requests == {
        _edge("user", "api", "virtual_node"): 3,
        _edge("api", "inventory"): 3,
        _edge("api", "worker", "messaging_system"): 3,
        _edge("worker", "orders", "database"): 3,
        _edge("api", "payments", "virtual_node"): 3,
    }
    failed = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "traces_service_graph_request_failed_total"
    }
    assert failed == {_edge("api", "inventory"): 1}
    unpaired = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "traces_service_graph_unpaired_spans_total"
    }
    assert unpaired == {_edge("api", ""): 3, _edge("", "inventory"): 3}


def test_service_graph_histograms_use_tempos_buckets(
    service: ServiceFactory, backend: EmbeddedBackend
) -> None:
    _send_topology(service, requests=2)

    samples = _samples(backend)

    edge = _edge("api", "inventory")
    server = "traces_service_graph_request_server_seconds"
    client = "traces_service_graph_request_client_seconds"
    assert samples[(server + "_count", edge)] == 2
    assert samples[(server + "_sum", edge)] == pytest.approx(0.300)
    assert samples[(client + "_sum", edge)] == pytest.approx(0.318)
    # 150 ms server spans: above the 0.1 s bucket, inside 0.2 s.
    assert samples[(server + "_bucket", _le(edge, "0.1"))] == 0
    assert samples[(server + "_bucket", _le(edge, "0.2"))] == 2
    assert samples[(server + "_bucket", _le(edge, "12.8"))] == 2
    assert samples[(server + "_bucket", _le(edge, "+Inf"))] == 2
    messaging = _edge("api", "worker", "messaging_system")
    # producer end -> consumer start: 300 ms
    assert samples[("traces_service_graph_request_messaging_system_seconds_sum", messaging)] == pytest.approx(
        0.6
    )


def test_backend_counters_are_on_metrics(service: ServiceFactory, backend: EmbeddedBackend) -> None:
    _send_topology(service, requests=1)
    with httpx.Client(base_url=backend.otlp_http_endpoint) as client:
        client.post("/v1/traces", content=b"junk", headers={"Content-Type": "application/x-protobuf"})

    samples = _samples(backend)

    # 7 spans in the request's trace, 2 in the cache refresh's; one export request per span.
    assert samples[("hoptrace_backend_spans_received_total", ())] == 9
    assert samples[("hoptrace_backend_requests_total", (("outcome", "invalid"),))] == 1
    assert samples[("hoptrace_backend_requests_total", (("outcome", "ok"),))] == 9
    assert samples[("hoptrace_backend_traces_stored", ())] == 2
    assert samples[("hoptrace_backend_spans_stored", ())] == 9
    assert samples[("hoptrace_backend_stored_bytes", ())] > 9 * 100


def test_edge_series_are_bounded_and_the_rest_counted_in_one_overflow_series() -> None:
    graph = ServiceGraph(max_edge_series=100)
    spans = []
    for index in range(20_000):  # 20k service names, each the server of a root span: an edge from "user"
        resource = Resource()
        resource.attributes.add(key="service.name").value.string_value = f"service-{index}"
        origin = SpanOrigin(resource.SerializeToString(), "", b"", "")
        span = PbSpan(trace_id=index.to_bytes(16, "big"), span_id=b"\x01" * 8, kind=PbSpan.SPAN_KIND_SERVER)
        spans.append((span.trace_id, origin, span.SerializeToString()))
    graph.add(spans)

    snapshot = graph.snapshot()

    assert len(snapshot.requests) == 101
    assert snapshot.requests[OVERFLOW_EDGE] == 20_000 - 100 == snapshot.overflowed_edges
    assert sum(snapshot.requests.values()) == 20_000
