from __future__ import annotations

import asyncio
import threading

import pytest
from opentelemetry import baggage, context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hoptrace.processors import TENANT_KEY, TenantSpanProcessor, invalid_tenants, validate_tenant
from hoptrace.processors._span_access import FAST, baggage_value, current_context
from tests.processors.conftest import tenant_baggage


def test_tenant_from_baggage_lands_on_span() -> None:
    with tenant_baggage("acme"):
        assert _tenant_of(TenantSpanProcessor()) == "acme"


def test_invalid_tenant_is_dropped_and_counted() -> None:
    before = invalid_tenants.count
    with tenant_baggage("acme corp\n"):
        assert _tenant_of(TenantSpanProcessor()) is None
    assert invalid_tenants.count == before + 1


def test_validate_tenant_bounds_length_and_charset() -> None:
    assert validate_tenant("tenant-1.eu:prod") == "tenant-1.eu:prod"
    assert validate_tenant("a" * 64) == "a" * 64
    assert validate_tenant("a" * 65) is None
    assert validate_tenant("") is None
    assert validate_tenant("-leading") is None
    assert validate_tenant(42) is None


def _tenant_of(processor: TenantSpanProcessor, attributes: dict[str, str] | None = None) -> object:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("work", attributes=attributes).end()
    (span,) = exporter.get_finished_spans()
    return (span.attributes or {}).get(TENANT_KEY)


def test_custom_baggage_key_is_read() -> None:
    with tenant_baggage("acme", key="org"):
        assert _tenant_of(TenantSpanProcessor(baggage_key="org")) == "acme"
        assert _tenant_of(TenantSpanProcessor()) is None


def test_fallback_attribute_then_default_when_baggage_has_none() -> None:
    processor = TenantSpanProcessor(fallback_attribute="app.org", default="public")
    assert _tenant_of(processor, {"app.org": "globex"}) == "globex"
    assert _tenant_of(processor) == "public"
    with tenant_baggage("acme"):
        assert _tenant_of(processor, {"app.org": "globex"}) == "acme"  # baggage wins


def test_invalid_baggage_falls_through_to_next_source() -> None:
    before = invalid_tenants.count
    with tenant_baggage("no spaces allowed"):
        assert _tenant_of(TenantSpanProcessor(default="public")) == "public"
    assert invalid_tenants.count == before + 1


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="default tenant"):
        TenantSpanProcessor(default="not valid")
    with pytest.raises(ValueError, match="baggage_key"):
        TenantSpanProcessor(baggage_key="")


def test_cached_valid_tenant_is_still_applied_on_every_span() -> None:
    processor = TenantSpanProcessor()
    with tenant_baggage("acme"):
        assert [_tenant_of(processor) for _ in range(3)] == ["acme", "acme", "acme"]


def test_pinned_sdk_takes_the_fast_attribute_path() -> None:
    # If this fails after an SDK upgrade, processors/_span_access.py falls back to the public API (slower).
    assert FAST


def test_span_limits_still_apply_to_the_tenant_attribute() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=2, max_span_attribute_length=3))
    provider.add_span_processor(TenantSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tenant_baggage("acme"):
        tracer.start_span("full", attributes={"a": "1", "b": "2"}).end()
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"b": "2", TENANT_KEY: "acm"}  # oldest dropped, value cut
    assert span.dropped_attributes == 1


def test_fast_baggage_read_matches_the_api() -> None:
    with_tenant = baggage.set_baggage(TENANT_KEY, "acme", Context())
    for parent in (None, Context(), with_tenant, baggage.set_baggage("other", "x", with_tenant)):
        assert baggage_value(TENANT_KEY, parent) == baggage.get_baggage(TENANT_KEY, parent)
    with tenant_baggage("globex"):
        assert baggage_value(TENANT_KEY, None) == "globex"


def test_fast_current_context_matches_the_api_in_threads_and_tasks() -> None:
    assert current_context() is context.get_current()
    seen: list[bool] = []

    def check(tenant: str) -> None:
        token = context.attach(baggage.set_baggage(TENANT_KEY, tenant))
        try:
            seen.append(current_context() is context.get_current())
            seen.append(baggage_value(TENANT_KEY, None) == tenant)
        finally:
            context.detach(token)

    async def in_task() -> None:
        check("task")

    thread = threading.Thread(target=check, args=("thread",))
    thread.start()
    thread.join()
    asyncio.run(in_task())
    check("main")
    assert seen == [True] * 6


def test_non_string_baggage_tenant_is_counted_not_raised() -> None:
    before = invalid_tenants.count
    token = context.attach(baggage.set_baggage(TENANT_KEY, 42))
    try:
        assert _tenant_of(TenantSpanProcessor()) is None
    finally:
        context.detach(token)
    assert invalid_tenants.count == before + 1
