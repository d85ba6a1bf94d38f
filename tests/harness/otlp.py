"""Send real spans over OTLP/gRPC with the OpenTelemetry SDK, as several in-process "services"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from hoptrace.tracing import OpenSpanReporter

EXPORT_DELAY_MS = 50


class Services:
    """One TracerProvider per service name, exporting to ``endpoint`` with a 50 ms batch delay; with
    ``open_spans_url`` each also reports its spans as they start, as services under the harness do."""

    def __init__(self, endpoint: str, open_spans_url: str | None = None) -> None:
        self.endpoint = endpoint
        self.open_spans_url = open_spans_url
        self._providers: dict[str, TracerProvider] = {}

    def tracer(self, service: str) -> trace.Tracer:
        if service not in self._providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            exporter = OTLPSpanExporter(endpoint=self.endpoint, insecure=True)
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS))
            if self.open_spans_url:
                provider.add_span_processor(OpenSpanReporter(self.open_spans_url, service))
            self._providers[service] = provider
        return self._providers[service].get_tracer("tests")

    def shutdown(self) -> None:
        for provider in self._providers.values():
            provider.shutdown()


@contextmanager
def entry(trace_id: str, span_id: str) -> Iterator[None]:
    """Run the block as if called by an untraced client that sent ``traceparent`` with these ids."""
    parent = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1))
    token = trace.context_api.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        yield
    finally:
        trace.context_api.detach(token)


def emit_order(services: Services, trace_id: str, entry_span_id: str, *, tenant: str = "acme") -> None:
    """api SERVER > (CLIENT > inventory SERVER) + (PRODUCER > worker CONSUMER > CLIENT > inventory SERVER)."""
    attrs = {"tenant.id": tenant}
    api, worker, inventory = (services.tracer(n) for n in ("api", "worker", "inventory"))
    with (
        entry(trace_id, entry_span_id),
        api.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes=attrs),
    ):
        with api.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes=attrs):
            inventory.start_span("GET /stock/{item}", kind=SpanKind.SERVER, attributes=attrs).end()
        with (
            api.start_as_current_span("publish orders", kind=SpanKind.PRODUCER, attributes=attrs),
            worker.start_as_current_span("process orders", kind=SpanKind.CONSUMER, attributes=attrs),
            worker.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes=attrs),
        ):
            inventory.start_span("POST /reserve/{item}", kind=SpanKind.SERVER, attributes=attrs).end()
