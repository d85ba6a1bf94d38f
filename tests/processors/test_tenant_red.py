"""TenantRedMetricsSpanProcessor records what TenantSpanProcessor then RedMetricsSpanProcessor record."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from hoptrace.processors import (
    TENANT_KEY,
    RedMetricsSpanProcessor,
    TenantRedMetricsSpanProcessor,
    TenantSpanProcessor,
    red_metrics_registry,
)
from tests.processors.conftest import tenant_baggage


def _run(*processors: SpanProcessor) -> list[dict[str, object]]:
    """Spans of several kinds, tenants (baggage, fallback attribute, none) and HTTP statuses through
    ``processors``; returns each exported span's attributes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    for processor in processors:
        provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for tenant in ("acme", "globex", "bad tenant", None):
        for kind in (SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL):
            for status in (200, 503):
                attributes = {"app.org": "fallback-org", "http.response.status_code": status}
                if tenant is None:
                    tracer.start_span(f"GET /{kind.name}", kind=kind, attributes=attributes).end()
                    continue
                with tenant_baggage(tenant):
                    tracer.start_span(f"GET /{kind.name}", kind=kind, attributes=attributes).end()
    return [dict(span.attributes or {}) for span in exporter.get_finished_spans()]


def _counts(red: RedMetricsSpanProcessor) -> list[tuple[tuple[tuple[str, str], ...], int]]:
    """Each series' labels and count (durations differ from run to run)."""
    return sorted((tuple(sorted(one.labels.items())), one.count) for one in red.snapshot())


@pytest.mark.parametrize("options", [{}, {"fallback_attribute": "app.org", "default": "public"}])
def test_one_processor_records_what_tenant_then_red_record(options: dict[str, str]) -> None:
    red = RedMetricsSpanProcessor(max_series=50)
    separate = _run(TenantSpanProcessor(**options), red)
    combined = TenantRedMetricsSpanProcessor(**options, max_series=50)
    assert _run(combined) == separate
    assert any(attributes.get(TENANT_KEY) == "acme" for attributes in separate)
    assert _counts(combined) == _counts(red)
    assert len(_counts(red)) >= 8


def test_it_is_both_processors_and_exposes_its_series() -> None:
    combined = TenantRedMetricsSpanProcessor(baggage_key="org", max_series=10)
    assert isinstance(combined, TenantSpanProcessor)
    assert isinstance(combined, RedMetricsSpanProcessor)
    assert combined.max_series == 10
    _run(combined)
    text = red_metrics_registry(combined)
    names = {metric.name for metric in text.collect()}
    assert "traces_spanmetrics_calls" in names


def test_its_series_can_be_shared_in_a_directory(tmp_path: Path) -> None:
    combined = TenantRedMetricsSpanProcessor()
    combined.share_in(str(tmp_path))
    _run(combined)
    assert combined.shared_directory == str(tmp_path)
    assert sum(one.count for one in combined.snapshot()) == 24


def test_bad_arguments_raise_as_the_separate_processors_do() -> None:
    with pytest.raises(ValueError, match="default tenant"):
        TenantRedMetricsSpanProcessor(default="not valid")
    with pytest.raises(ValueError, match="max_series"):
        TenantRedMetricsSpanProcessor(max_series=1)
    with pytest.raises(ValueError, match="baggage_key"):
        TenantRedMetricsSpanProcessor(baggage_key="")
