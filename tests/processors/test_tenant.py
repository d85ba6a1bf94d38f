from __future__ import annotations

from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from processors import TENANT_KEY, TenantSpanProcessor, invalid_tenants, validate_tenant


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(TenantSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_tenant_from_baggage_lands_on_span() -> None:
    provider, exporter = _provider()
    token = context.attach(baggage.set_baggage(TENANT_KEY, "acme"))
    try:
        with provider.get_tracer("t").start_as_current_span("work"):
            pass
    finally:
        context.detach(token)
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes[TENANT_KEY] == "acme"


def test_invalid_tenant_is_dropped_and_counted() -> None:
    provider, exporter = _provider()
    before = invalid_tenants.count
    token = context.attach(baggage.set_baggage(TENANT_KEY, "acme corp\n"))
    try:
        with provider.get_tracer("t").start_as_current_span("work"):
            pass
    finally:
        context.detach(token)
    (span,) = exporter.get_finished_spans()
    assert TENANT_KEY not in (span.attributes or {})
    assert invalid_tenants.count == before + 1


def test_validate_tenant_bounds_length_and_charset() -> None:
    assert validate_tenant("tenant-1.eu:prod") == "tenant-1.eu:prod"
    assert validate_tenant("a" * 64) == "a" * 64
    assert validate_tenant("a" * 65) is None
    assert validate_tenant("") is None
    assert validate_tenant("-leading") is None
    assert validate_tenant(42) is None
