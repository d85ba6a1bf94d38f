"""The manual API: tenant scope, span context manager and traced decorator, sync and async."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context
from opentelemetry.trace import SpanKind, StatusCode

from hoptrace.processors import TENANT_KEY, invalid_tenants
from hoptrace.tracing import extract, inject, span, tenant, traced
from tests.tracing.conftest import FinishedSpans


def test_tenant_scope_sets_and_restores_baggage(spans: FinishedSpans) -> None:
    with tenant("acme") as value, span("work"):
        assert value == "acme"
        assert baggage.get_baggage(TENANT_KEY) == "acme"
    assert baggage.get_baggage(TENANT_KEY) is None
    assert spans.named("work").attributes[TENANT_KEY] == "acme"  # type: ignore[index]


def test_invalid_tenant_is_dropped_and_counted_without_raising() -> None:
    before = invalid_tenants.count
    with tenant("acme"), tenant("not valid!") as value:
        assert value is None
        assert baggage.get_baggage(TENANT_KEY) is None
    assert invalid_tenants.count == before + 1


def test_traced_decorator_wraps_sync_and_async_functions(spans: FinishedSpans) -> None:
    @traced
    def plain() -> int:
        return 1

    @traced(name="named", kind=SpanKind.CLIENT)
    def named() -> int:
        return 2

    assert plain() + named() == 3
    assert (
        spans.named("test_traced_decorator_wraps_sync_and_async_functions.<locals>.plain").kind
        is SpanKind.INTERNAL
    )
    assert spans.named("named").kind is SpanKind.CLIENT


async def test_traced_async_function_runs_inside_its_span(spans: FinishedSpans) -> None:
    @traced(name="fetch")
    async def fetch() -> str:
        with span("inner"):
            return "done"

    assert await fetch() == "done"
    assert spans.named("inner").parent.span_id == spans.named("fetch").context.span_id  # type: ignore[union-attr]


def test_span_records_an_escaping_exception(spans: FinishedSpans) -> None:
    with pytest.raises(KeyError), span("lookup", attributes={"key": "a"}):
        raise KeyError("a")
    assert spans.named("lookup").status.status_code is StatusCode.ERROR


def test_inject_and_extract_carry_trace_and_tenant_through_a_custom_carrier() -> None:
    carrier: dict[str, str] = {}
    with tenant("acme"), span("send") as sent:
        inject(carrier)
    received = extract({key.upper(): value.encode() for key, value in carrier.items()})
    token = context.attach(received)
    try:
        with span("receive") as got:
            assert got.get_span_context().trace_id == sent.get_span_context().trace_id
            assert baggage.get_baggage(TENANT_KEY) == "acme"
    finally:
        context.detach(token)


def test_extract_drops_an_invalid_tenant() -> None:
    received = extract({"baggage": "tenant.id=bad%20value,other=1"})
    assert baggage.get_baggage(TENANT_KEY, received) is None
    assert baggage.get_baggage("other", received) == "1"
