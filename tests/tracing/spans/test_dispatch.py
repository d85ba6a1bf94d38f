"""The provider's span processor calls every hook that does something, in order, and only those."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hoptrace.processors import RedactionSpanProcessor, TenantSpanProcessor
from hoptrace.tracing._spans.dispatch import SpanProcessorDispatch, _working
from hoptrace.tracing._spans.hop import HopTracer

RESOURCE = Resource({"service.name": "svc"})


def test_processor_hooks_run_in_order_and_late_processors_see_spans(recorded: list[str]) -> None:
    dispatch = SpanProcessorDispatch()
    provider = TracerProvider(resource=RESOURCE, active_span_processor=dispatch)
    provider.add_span_processor(_Recording("first", recorded))
    tracer = HopTracer(provider)
    early = tracer.start_span("early")
    provider.add_span_processor(_Recording("second", recorded))
    early.end()
    tracer.start_span("late").end()
    assert recorded == [
        "first start early",
        "first ending early",
        "second ending early",
        "first end early",
        "second end early",
        "first start late",
        "second start late",
        "first ending late",
        "second ending late",
        "first end late",
        "second end late",
    ]


@pytest.fixture
def recorded() -> list[str]:
    return []


class _Recording(SpanProcessor):
    def __init__(self, label: str, into: list[str]) -> None:
        self._label = label
        self._into = into

    def on_start(self, span: object, parent_context: object = None) -> None:
        self._into.append(f"{self._label} start {getattr(span, 'name', '')}")

    def _on_ending(self, span: object) -> None:
        self._into.append(f"{self._label} ending {getattr(span, 'name', '')}")

    def on_end(self, span: ReadableSpan) -> None:
        self._into.append(f"{self._label} end {span.name}")


class _Documented(SpanProcessor):
    def on_start(self, span: object, parent_context: object = None) -> None:
        """Nothing to do."""

    def on_end(self, span: ReadableSpan) -> None:
        return None


def test_hooks_that_do_nothing_are_not_called_and_the_others_are() -> None:
    exporter = InMemorySpanExporter()
    simple = SimpleSpanProcessor(exporter)
    assert _working(simple, "on_start") is None  # its body is ``pass``
    assert _working(simple, "_on_ending") is None
    assert _working(simple, "on_end") is not None
    assert _working(_Documented(), "on_start") is None
    assert _working(_Documented(), "on_end") is None
    assert _working(SpanProcessor(), "on_end") is None
    tenant = TenantSpanProcessor()
    assert _working(tenant, "on_start") is not None and _working(tenant, "on_end") is None
    # Redaction forwards on_start to what it wraps: called only when that one works.
    assert _working(RedactionSpanProcessor(simple), "on_start") is None
    assert _working(RedactionSpanProcessor(_Recording("x", [])), "on_start") is not None
    batch = BatchSpanProcessor(exporter)
    try:
        assert [_working(batch, hook) is not None for hook in ("on_start", "_on_ending", "on_end")] == [
            False,
            False,
            True,
        ]
    finally:
        batch.shutdown()


def test_shutdown_and_flush_reach_every_processor() -> None:
    dispatch = SpanProcessorDispatch()
    provider = TracerProvider(resource=RESOURCE, active_span_processor=dispatch)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(_Documented())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    HopTracer(provider).start_span("op").end()
    assert provider.force_flush()
    provider.shutdown()
    assert [span.name for span in exporter.get_finished_spans()] == ["op"]
    assert exporter._stopped  # type: ignore[attr-defined]
