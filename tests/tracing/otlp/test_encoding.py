"""hoptrace's OTLP encoder writes valid OTLP: its bytes, decoded with the official ``opentelemetry-proto``
classes, equal what the SDK's own encoder builds, field by field, for every field hoptrace sets; the
exporters that send them deliver to the embedded backend over gRPC and HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TraceState,
    set_span_in_context,
)

from hoptrace import harness
from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.tracing._otlp.encoding import encode_spans, left_out
from hoptrace.tracing._otlp.export import fast_otlp_exporter
from hoptrace.tracing._otlp.grpc import GrpcBytesSpanExporter
from hoptrace.tracing._otlp.http import HttpBytesSpanExporter
from hoptrace.tracing._otlp.http_transport import KeepAliveHttpTransport
from hoptrace.tracing._spans.hop import HopSpan, HopTracer

REMOTE_PARENT = SpanContext(
    0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "x1")])
)
LINKED = SpanContext(
    0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")])
)


def _decode(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(encode_spans(spans))


def _record(limits: SpanLimits | None = None, via: str = "sdk") -> list[ReadableSpan]:
    """Spans made through the SDK's tracer (``via="sdk"``) or hoptrace's hop tracer (``"hop"``), setting
    every field hoptrace's instrumentation and processors set."""
    exporter = InMemorySpanExporter()
    resource = Resource(
        {"service.name": "svc", "service.instance.id": "i-1", "deployment.count": 3}, "https://schema/1"
    )
    provider = TracerProvider(resource=resource, span_limits=limits or SpanLimits())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer: Tracer = (
        HopTracer(provider)
        if via == "hop"
        else provider.get_tracer(
            "hoptrace.tracing", "0.1.0", schema_url="https://schema/2", attributes={"scope.attr": "s"}
        )
    )
    parent = set_span_in_context(NonRecordingSpan(REMOTE_PARENT))
    attributes = {
        "str": "value",
        "empty": "",
        "bool": True,
        "int": 200,
        "negative": -7,
        "float": 0.25,
        "strings": ("a", "b"),
        "ints": (1, 2, 3),
        "floats": (1.5,),
        "bools": (True, False),
        "unicode": "caf\u00e9 \u2603",
        "tenant.id": "acme",
    }
    with tracer.start_as_current_span(
        "POST /orders",
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes,
        links=[Link(LINKED, {"link.attr": 1})],
    ) as server:
        server.add_event("first", timestamp=5)
        server.add_event(
            "exception", {"exception.type": "ValueError", "exception.message": "boom"}, timestamp=6
        )
        server.set_status(Status(StatusCode.ERROR, "boom"))
        for kind in (SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
            with tracer.start_as_current_span(f"child {kind.name}", kind=kind) as child:
                child.set_status(Status(StatusCode.OK))
    spans = list(exporter.get_finished_spans())
    assert {type(span) for span in spans} == ({HopSpan} if via == "hop" else {ReadableSpan})
    return spans


def _without_link_extras(request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    """hoptrace also sends each link's trace state and W3C flags, which the SDK's encoder leaves out."""
    copy = ExportTraceServiceRequest()
    copy.CopyFrom(request)
    for resource_spans in copy.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                for link in span.links:
                    link.trace_state = ""
                    link.flags &= ~0xFF
    return copy


@pytest.mark.parametrize("via", ["sdk", "hop"])
def test_every_field_decodes_as_the_sdk_encoder_writes_it(via: str) -> None:
    spans = _record(via=via)
    ours = _decode(spans)
    assert _without_link_extras(ours) == sdk_encode_spans(spans)


def test_fields_decoded_one_by_one() -> None:
    request = _decode(_record())
    (resource_spans,) = request.resource_spans
    assert resource_spans.schema_url == "https://schema/1"
    resource = {kv.key: kv.value for kv in resource_spans.resource.attributes}
    assert resource["service.name"].string_value == "svc"
    assert resource["deployment.count"].int_value == 3
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("hoptrace.tracing", "0.1.0")
    assert scope_spans.scope.attributes[0].key == "scope.attr"
    assert scope_spans.schema_url == "https://schema/2"
    by_name = {span.name: span for span in scope_spans.spans}
    server = by_name["POST /orders"]
    assert server.trace_id == (0xABC).to_bytes(16, "big")
    assert server.parent_span_id == (0xDEF).to_bytes(8, "big")
    assert server.trace_state == "vendor=x1"
    assert server.flags == 0x300  # has-is-remote | is-remote
    assert server.kind == 2  # SPAN_KIND_SERVER
    assert 0 < server.start_time_unix_nano <= server.end_time_unix_nano
    values = {kv.key: kv.value for kv in server.attributes}
    assert values["str"].string_value == "value"
    assert values["empty"].WhichOneof("value") == "string_value"
    assert values["bool"].bool_value is True
    assert values["int"].int_value == 200
    assert values["negative"].int_value == -7
    assert values["float"].double_value == 0.25
    assert [v.string_value for v in values["strings"].array_value.values] == ["a", "b"]
    assert [v.int_value for v in values["ints"].array_value.values] == [1, 2, 3]
    assert values["unicode"].string_value == "caf\u00e9 \u2603"
    assert [(e.name, e.time_unix_nano) for e in server.events] == [("first", 5), ("exception", 6)]
    assert server.events[1].attributes[1].value.string_value == "boom"
    (link,) = server.links
    assert (link.trace_id, link.span_id) == ((0x1234).to_bytes(16, "big"), (0x5678).to_bytes(8, "big"))
    assert link.trace_state == "k=v"
    assert link.flags == 0x301
    assert link.attributes[0].value.int_value == 1
    assert (server.status.code, server.status.message) == (2, "boom")
    kinds = {span.name: span.kind for span in scope_spans.spans}
    assert kinds == {
        "POST /orders": 2,
        "child CLIENT": 3,
        "child PRODUCER": 4,
        "child CONSUMER": 5,
        "child INTERNAL": 1,
    }
    child = by_name["child CLIENT"]
    assert child.parent_span_id == server.span_id
    assert child.flags == 0x100  # local parent
    assert child.status.code == 1


@pytest.mark.parametrize("via", ["sdk", "hop"])
def test_dropped_counts(via: str) -> None:
    limits = SpanLimits(max_span_attributes=2, max_events=1, max_links=0, max_event_attributes=1)
    spans = [span for span in _record(limits, via) if span.name == "POST /orders"]
    request = _decode(spans)
    server = request.resource_spans[0].scope_spans[0].spans[0]
    assert (server.dropped_attributes_count, server.dropped_events_count, server.dropped_links_count) == (
        10,
        1,
        1,
    )
    assert (server.events[0].name, server.events[0].dropped_attributes_count) == ("exception", 1)
    assert _without_link_extras(request) == sdk_encode_spans(spans)


RESOURCE = Resource({"service.name": "r"})


def _readable(attributes: Mapping[str, Any], **fields: Any) -> ReadableSpan:
    context = SpanContext(1, 2, is_remote=False)
    defaults: dict[str, Any] = {
        "name": "s",
        "context": context,
        "start_time": 1,
        "end_time": 2,
        "resource": RESOURCE,
    }
    return ReadableSpan(attributes=attributes, **{**defaults, **fields})


def test_values_the_sdk_may_hold_beyond_attribute_types() -> None:
    """Redaction copies and users' processors can build spans with any attribute value."""
    spans = [_readable({"bytes": b"\x00\xff", "map": {"a": 1, "b": ["x"]}, "none": None})]
    ours = _decode(spans)
    assert ours == sdk_encode_spans(spans)
    values = {kv.key: kv.value for kv in ours.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert values["bytes"].bytes_value == b"\x00\xff"
    assert values["map"].kvlist_value.values[1].value.array_value.values[0].string_value == "x"
    assert values["none"] == AnyValue()


@pytest.mark.parametrize("bad", [2**64, object(), "\ud800"])
def test_a_value_that_cannot_be_encoded_is_left_out_and_the_rest_is_kept(bad: object) -> None:
    before = left_out.attributes
    request = _decode([_readable({"before": 1, "bad": bad, "after": "x"})])
    assert left_out.attributes == before + 1
    keys = [kv.key for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes]
    assert keys == ["before", "after"]


def test_spans_are_grouped_by_resource_then_scope() -> None:
    one, two = Resource({"service.name": "one"}), Resource({"service.name": "two"})
    spans = [_readable({}, name=f"s{i}", resource=resource) for i, resource in enumerate((one, two, one))]
    request = _decode(spans)
    assert [[s.name for s in rs.scope_spans[0].spans] for rs in request.resource_spans] == [
        ["s0", "s2"],
        ["s1"],
    ]
    assert request == sdk_encode_spans(spans)


def test_repeated_values_come_out_of_the_cache_unchanged() -> None:
    """True == 1 as a dict key: the cache must not hand back the other type's encoding."""
    spans = [_readable({"v": value}) for value in (1, True, 1.0, "1", 1, True)]
    request = _decode(spans)
    decoded = [
        s.attributes[0].value.WhichOneof("value") for s in request.resource_spans[0].scope_spans[0].spans
    ]
    assert decoded == ["int_value", "bool_value", "double_value", "string_value", "int_value", "bool_value"]


def test_a_repeated_attribute_set_decodes_the_same_and_a_left_out_value_is_counted_each_time() -> None:
    same = {"http.request.method": "GET", "server.port": 8000, "ok": True, "ratio": 0.5, "tags": ("a", "b")}
    other = {**same, "ok": 1}  # equal as a dict (True == 1), encoded differently
    request = _decode([_readable(same), _readable(other), _readable(same), _readable({"list": ["x"]})])
    spans = request.resource_spans[0].scope_spans[0].spans
    assert [[a.key for a in s.attributes] for s in spans[:3]] == [list(same)] * 3
    kinds = [s.attributes[2].value.WhichOneof("value") for s in spans[:3]]
    assert kinds == ["bool_value", "int_value", "bool_value"]
    assert spans[0].attributes == spans[2].attributes
    before = left_out.attributes
    for _ in range(2):
        _decode([_readable({"fine": "x", "bad": 2**70})])
    assert left_out.attributes == before + 2


def test_no_spans_is_an_empty_request() -> None:
    assert encode_spans([]) == b""


@pytest.fixture(scope="module")
def backend() -> Iterator[EmbeddedBackend]:
    server = EmbeddedBackend(host="127.0.0.1", http_port=0, otlp_grpc_port=0, otlp_http_port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("protocol", "fast"), [("grpc", GrpcBytesSpanExporter), ("http/protobuf", HttpBytesSpanExporter)]
)
def test_the_exporters_deliver_to_the_embedded_backend(
    backend: EmbeddedBackend, protocol: str, fast: type[SpanExporter]
) -> None:
    grpc = protocol == "grpc"
    endpoint = backend.otlp_grpc_endpoint if grpc else backend.otlp_http_endpoint + "/v1/traces"
    exporter = fast_otlp_exporter(protocol, endpoint)
    assert type(exporter) is fast  # the hook into the SDK exporter took
    spans = _record()
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.export(spans[:1]) is SpanExportResult.SUCCESS  # the same kept-alive connection
        if not grpc:
            assert type(exporter._client._transport) is KeepAliveHttpTransport  # type: ignore[attr-defined]
    finally:
        exporter.shutdown()
    stored = {span.name: span for span in backend.store.get_trace(format(0xABC, "032x"))}
    assert set(stored) == {span.name for span in spans}
    server = stored["POST /orders"]
    assert (server.kind, server.status, server.status_message) == (
        harness.SpanKind.SERVER,
        harness.StatusCode.ERROR,
        "boom",
    )
    assert server.service_name == "svc"
    assert server.attributes["tenant.id"] == "acme"
    assert server.attributes["int"] == 200
    assert [event.name for event in server.events] == ["first", "exception"]
    assert server.links[0].span_id == format(0x5678, "016x")
    assert stored["child CLIENT"].parent_span_id == server.span_id


def test_the_http_exporter_posts_through_the_lean_transport_unless_a_proxy_is_configured(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = backend.otlp_http_endpoint + "/v1/traces"
    direct = HttpBytesSpanExporter(endpoint)
    assert type(direct._client._transport) is KeepAliveHttpTransport
    tls = HttpBytesSpanExporter(endpoint.replace("http://", "https://"))
    assert type(tls._client._transport).__name__ == "Urllib3HTTPTransport"  # TLS settings stay urllib3's
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    proxied = HttpBytesSpanExporter(endpoint)
    assert type(proxied._client._transport).__name__ == "RequestsHTTPTransport"  # requests honours proxies
    for exporter in (direct, tls, proxied):
        exporter.shutdown()


def test_a_grpc_service_never_imports_the_http_client_stack() -> None:
    code = (
        "import sys\n"
        "from hoptrace.tracing._otlp.export import fast_otlp_exporter\n"
        "fast_otlp_exporter('grpc', 'http://127.0.0.1:9').shutdown()\n"
        "print(sorted(m for m in ('requests', 'urllib3') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_a_plain_http_exporter_never_builds_the_requests_session_it_would_not_use() -> None:
    """``requests`` is ~40 ms of imports on a service's first export; the endpoint here comes from the
    environment, as under ``hoptrace run``."""
    code = (
        "import sys\n"
        "from hoptrace.tracing._otlp.export import fast_otlp_exporter\n"
        "exporter = fast_otlp_exporter('http/protobuf', None)\n"
        "print(type(exporter._client._transport).__name__, exporter._client._endpoint)\n"
        "print(sorted(m for m in ('requests', 'urllib3') if m in sys.modules))\n"
        "exporter.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and "OTLP" not in k}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.stdout.splitlines() == ["KeepAliveHttpTransport http://127.0.0.1:9/v1/traces", "[]"], (
        result.stdout + result.stderr
    )


def test_a_credential_provider_keeps_the_sdk_session(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK loads the provider's session only when it builds its own transport, so hoptrace's must not
    take its place (an unknown provider makes the SDK's constructor raise, which shows it was asked)."""
    monkeypatch.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER", "no-such-provider")
    with pytest.raises(RuntimeError, match="no-such-provider"):
        HttpBytesSpanExporter(backend.otlp_http_endpoint + "/v1/traces")


def test_a_span_that_cannot_be_encoded_is_left_out_counted_and_the_batch_kept() -> None:
    before = left_out.spans
    request = _decode([_readable({}, name="ok"), _readable({}, name="bad \ud800"), _readable({}, name="ok2")])
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == ["ok", "ok2"]
    assert left_out.spans == before + 1
