"""Redaction: what reaches the exporter has no secrets, wherever and whenever they were recorded."""

from __future__ import annotations

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from hoptrace.processors import REDACTED, RedactionSpanProcessor, Redactor

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2hlcmU"


def _pipeline(
    redactor: Redactor | None = None,
) -> tuple[TracerProvider, InMemorySpanExporter, RedactionSpanProcessor]:
    exporter = InMemorySpanExporter()
    processor = RedactionSpanProcessor(SimpleSpanProcessor(exporter), redactor=redactor)
    provider = TracerProvider(span_limits=SpanLimits(max_attributes=20, max_events=2))
    provider.add_span_processor(processor)
    return provider, exporter, processor


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "url.full",
            "https://alice:s3cret@shop.example/a?b=1",
            "https://REDACTED:REDACTED@shop.example/a?b=1",
        ),
        (
            "url.full",
            "https://s3.example/o?X-Amz-Signature=abc&X-Amz-Credential=k&sig=x&AWSAccessKeyId=AK&keep=1",
            "https://s3.example/o?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&sig=REDACTED"
            "&AWSAccessKeyId=REDACTED&keep=1",
        ),
        (
            "url.query",
            "Signature=abc&X-Goog-Signature=def&page=2",
            "Signature=REDACTED&X-Goog-Signature=REDACTED&page=2",
        ),
        (
            "http.url",
            "http://h/cb?access_token=abc&api_key=k",
            "http://h/cb?access_token=REDACTED&api_key=REDACTED",
        ),
        ("http.request.header.authorization", ("Bearer abc.def",), REDACTED),
        ("http.request.header.cookie", "session=1", REDACTED),
        ("http.response.header.set-cookie", "a=b", REDACTED),
        ("http.request.header.x-api-key", "k", REDACTED),
        ("db.user.password", "hunter2", REDACTED),
        ("app.client_secret", "x", REDACTED),
        ("message", "calling with Bearer abc123.xyz now", "calling with Bearer REDACTED now"),
        ("message", "basic creds: Basic dXNlcjpwYXNz", "basic creds: Basic REDACTED"),
        ("message", f"token is {JWT}!", f"token is {REDACTED}!"),
        ("gen_ai.usage.input_tokens", 42, 42),
        ("http.route", "/orders/{id}", "/orders/{id}"),
        ("tenant.id", "acme", "acme"),
        ("url.full", "https://shop.example/search?q=shoes", "https://shop.example/search?q=shoes"),
    ],
)
def test_redactor_rules(key: str, value: AttributeValue, expected: AttributeValue) -> None:
    assert Redactor().redact_value(key, value) == expected


def test_configured_extra_query_parameters_and_key_words() -> None:
    redactor = Redactor(extra_query_parameters=["otp"], extra_secret_key_words=["ssn"])
    assert redactor.redact_value("url.query", "otp=123&x=1") == "otp=REDACTED&x=1"
    assert redactor.redact_value("customer.ssn", "123-45-6789") == REDACTED
    assert Redactor().redact_value("customer.ssn", "123-45-6789") == "123-45-6789"


def test_bad_pattern_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="secret key word"):
        Redactor(extra_secret_key_words=["("])


def test_attributes_set_during_and_at_end_of_life_and_events_are_redacted() -> None:
    provider, exporter, processor = _pipeline()
    span = provider.get_tracer("t").start_span("GET", attributes={"url.full": "https://u:p@h/x"})
    span.set_attribute("http.request.header.authorization", "Bearer abc")
    span.add_event("retry", {"url.full": "https://h/x?sig=abc", "attempt": 2})
    span.add_event("plain", {"attempt": 3})
    span.set_status(Status(StatusCode.ERROR, f"upstream said {JWT}"))
    span.set_attribute("late.token", "t0k3n")
    span.end()

    (exported,) = exporter.get_finished_spans()
    assert dict(exported.attributes or {}) == {
        "url.full": "https://REDACTED:REDACTED@h/x",
        "http.request.header.authorization": REDACTED,
        "late.token": REDACTED,
    }
    assert [(e.name, dict(e.attributes or {})) for e in exported.events] == [
        ("retry", {"url.full": "https://h/x?sig=REDACTED", "attempt": 2}),
        ("plain", {"attempt": 3}),
    ]
    assert exported.status.description == "upstream said REDACTED"
    assert exported.status.status_code is StatusCode.ERROR
    assert processor.redacted_spans == 1


def test_link_attributes_are_redacted_and_ids_times_kept() -> None:
    provider, exporter, _ = _pipeline()
    tracer = provider.get_tracer("t")
    other = tracer.start_span("other", context=Context())
    other.end()
    span = tracer.start_span(
        "consume", links=[Link(other.get_span_context(), {"api_key": "k"})], start_time=5
    )
    span.end(end_time=9)
    exported = exporter.get_finished_spans()[-1]
    assert dict(exported.links[0].attributes or {}) == {"api_key": REDACTED}
    assert exported.links[0].context == other.get_span_context()
    assert (exported.context, exported.start_time, exported.end_time) == (span.get_span_context(), 5, 9)


def test_span_with_nothing_to_mask_is_forwarded_as_is() -> None:
    exporter = InMemorySpanExporter()
    processor = RedactionSpanProcessor(SimpleSpanProcessor(exporter))
    context = SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    span = ReadableSpan(
        name="clean", context=context, attributes={"http.route": "/a"}, start_time=0, end_time=1
    )
    processor.on_end(span)
    assert exporter.get_finished_spans()[0] is span
    assert processor.redacted_spans == 0


def test_dropped_counts_survive_redaction() -> None:
    provider, exporter, _ = _pipeline()
    span = provider.get_tracer("t").start_span("x", attributes={f"a{i}": i for i in range(25)})
    span.set_attribute("token", "t")
    for n in range(4):
        span.add_event(f"e{n}", {"password": "p"})
    span.end()
    (exported,) = exporter.get_finished_spans()
    assert (exported.dropped_attributes, exported.dropped_events) == (6, 2)
    assert [dict(e.attributes or {}) for e in exported.events] == [{"password": REDACTED}] * 2


class _BrokenRedactor(Redactor):
    def redact_attributes(self, attributes: object) -> None:  # type: ignore[override]
        raise RuntimeError("boom")


def test_a_redaction_failure_exports_every_attribute_redacted_and_never_raises() -> None:
    provider, exporter, processor = _pipeline(_BrokenRedactor())
    provider.get_tracer("t").start_span("x", attributes={"harmless": "1", "maybe": "secret"}).end()
    (exported,) = exporter.get_finished_spans()
    assert dict(exported.attributes or {}) == {"harmless": REDACTED, "maybe": REDACTED}
    assert processor.failed_spans == 1


def test_huge_values_are_scanned_whole() -> None:
    padding = "p" * 1_000_000
    redactor = Redactor()
    assert (
        redactor.redact_value("url.full", f"https://h/{padding}?sig=abc")
        == f"https://h/{padding}?sig=REDACTED"
    )
    assert redactor.redact_value("message", f"{padding} Bearer abcdefgh123") == f"{padding} Bearer REDACTED"


class _Unreadable(ReadableSpan):
    @property
    def attributes(self) -> dict[str, AttributeValue]:  # type: ignore[override]
        raise RuntimeError("broken span")


def test_a_span_that_cannot_be_read_is_dropped_not_raised() -> None:
    exporter = InMemorySpanExporter()
    processor = RedactionSpanProcessor(SimpleSpanProcessor(exporter), redactor=_BrokenRedactor())
    processor.on_end(_Unreadable(name="x", start_time=0, end_time=1))
    assert exporter.get_finished_spans() == ()
    assert processor.failed_spans == 1
