"""Hop spans are the SDK's spans: whatever the fast path builds, the SDK would have built the same, and
whatever it cannot build the same way, the SDK builds."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider, _Span, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from hoptrace.tracing._spans import hop, probe
from hoptrace.tracing._spans.hop import HopSpan, HopTracer
from hoptrace.tracing._tracer import hop_tracer
from tests.tracing.conftest import FinishedSpans

RESOURCE = Resource({"service.name": "svc"})
REMOTE = SpanContext(0xABC, 0xDEF, True, TraceFlags(TraceFlags.SAMPLED), TraceState([("vendor", "v1")]))


class Pair:
    """One provider, with its exporter, traced through the SDK's tracer and through a HopTracer."""

    def __init__(self, **provider_options: object) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=RESOURCE, **provider_options)  # type: ignore[arg-type]
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.sdk = self.provider.get_tracer("hoptrace", "0.1.0")
        self.hop = HopTracer(self.provider)

    def finished(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()


def _public(span: ReadableSpan) -> dict[str, object]:
    """Everything a processor or exporter can read of an ended span, ids apart."""
    context, parent = span.context, span.parent
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "trace_flags": context.trace_flags,
        "trace_state": dict(context.trace_state),
        "is_remote": context.is_remote,
        "parent": parent,
        "attributes": dict(span.attributes or {}),
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
        "events": [(event.name, dict(event.attributes or {})) for event in span.events],
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource,
        "scope": span.instrumentation_scope,
    }


def _both(pair: Pair, context: object = None, **options: object) -> tuple[ReadableSpan, ReadableSpan]:
    for tracer in (pair.sdk, pair.hop):
        span = tracer.start_span("GET /x", context=context, kind=SpanKind.SERVER, **options)  # type: ignore[arg-type]
        span.set_attribute("http.response.status_code", 200)
        span.set_attribute("url.path", "/x")
        span.add_event("ev", {"e": 1})
        span.update_name("GET /y")
        span.end()
    theirs, ours = pair.finished()
    return theirs, ours


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"attributes": {"s": "v", "i": 1, "f": 0.5, "b": True}},
        {"attributes": {"list": ["a", "b"], "none": None, "": "empty key"}},  # validated by the SDK
        {"links": [Link(REMOTE, {"l": 1})]},
    ],
)
@pytest.mark.parametrize("parent", [None, REMOTE])
def test_a_hop_span_reads_as_the_sdk_span_of_the_same_calls(
    options: dict[str, object], parent: SpanContext | None
) -> None:
    pair = Pair()
    context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None
    theirs, ours = _both(pair, context, **options)
    assert type(ours) is HopSpan
    assert _public(ours) == _public(theirs)
    assert ours.context is not None and theirs.context is not None
    assert (ours.context.trace_id == theirs.context.trace_id) == (parent is not None)


@pytest.mark.parametrize(
    "limits",
    [
        SpanLimits(max_span_attributes=2),
        SpanLimits(max_span_attribute_length=2),
        SpanLimits(max_events=0, max_links=0),
    ],
)
def test_span_limits_apply_as_in_the_sdk(limits: SpanLimits) -> None:
    pair = Pair(span_limits=limits)
    theirs, ours = _both(pair, attributes={"a": "long", "b": "long", "c": 3}, links=[Link(REMOTE)])
    assert _public(ours) == _public(theirs)


def test_processors_receive_the_ended_span_itself_and_it_no_longer_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pair = Pair()
    span = pair.hop.start_span("op", attributes={"a": 1})
    span.end()
    (ended,) = pair.finished()
    assert ended is span
    with caplog.at_level(logging.WARNING):
        span.set_attribute("a", 2)
        span.set_attribute("late", "x")
        span.update_name("renamed")
    assert dict(ended.attributes or {}) == {"a": 1} and ended.name == "op"


def test_events_and_links_added_later_belong_to_their_span_only() -> None:
    pair = Pair()
    first, second = pair.hop.start_span("first"), pair.hop.start_span("second")
    first.add_event("only first", {"n": 1})
    first.add_link(REMOTE, {"l": 2})
    first.record_exception(ValueError("boom"))
    for span in (first, second):
        span.end()
    first.add_event("too late")
    assert [event.name for event in first.events] == ["only first", "exception"]
    assert [link.context for link in first.links] == [REMOTE]
    assert (second.events, second.links) == ((), ())
    assert (first.dropped_events, second.dropped_links) == (0, 0)


def test_a_child_of_an_unsampled_parent_is_not_recorded_as_in_the_sdk() -> None:
    pair = Pair()
    unsampled = SpanContext(0xABC, 0xDEF, True, TraceFlags(TraceFlags.DEFAULT))
    span = pair.hop.start_span("op", context=trace.set_span_in_context(NonRecordingSpan(unsampled)))
    assert not span.is_recording() and span.get_span_context().trace_id == 0xABC
    span.end()
    assert pair.finished() == ()


@pytest.mark.parametrize(
    "sampler", [sampling.ALWAYS_OFF, sampling.TraceIdRatioBased(1.0), sampling.DEFAULT_OFF]
)
def test_other_samplers_decide_through_the_sdk(sampler: sampling.Sampler) -> None:
    pair = Pair(sampler=sampler)
    theirs, ours = pair.sdk.start_span("op"), pair.hop.start_span("op")
    assert type(ours) is type(theirs) and ours.is_recording() == theirs.is_recording()


def test_hop_spans_follow_the_global_provider(spans: FinishedSpans) -> None:
    span = hop_tracer().start_span("global", kind=SpanKind.CLIENT, attributes={"a": "b"})
    span.end()
    assert type(span) is HopSpan and spans.named("global") is span
    assert dict(span.attributes or {}) == {"a": "b"}


@pytest.fixture
def unfamiliar_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(hop, "_checked", None)
    monkeypatch.setattr(probe, "shape_problem", lambda *_: "the SDK's Span has other fields (['_new'])")
    yield


def test_an_unfamiliar_sdk_takes_the_public_path_and_says_so_once(
    unfamiliar_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hoptrace.tracing"):
        spans = [HopTracer(Pair().provider).start_span("op") for _ in range(3)]
    assert {type(span) for span in spans} == {_Span}
    (line,) = [record.getMessage() for record in caplog.records if "public path" in record.getMessage()]
    assert "other fields" in line


def test_the_installed_sdk_passes_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hop, "_checked", None)  # probe again, now
    assert hop.sdk_shape_checked()
