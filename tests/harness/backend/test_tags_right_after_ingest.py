"""Autocomplete right after ingest: tag names and values answer before the trace index has read what was
just stored, without reading it, and give what they give once it caught up."""

from __future__ import annotations

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.harness.backend._receiver import Receiver
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._tags import tag_values_v2, tags_v2
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.traceql import Attribute, Intrinsic

from .conftest import ServiceFactory

VALUE_PATHS = [
    "/api/v2/search/tag/span.http.route/values",
    "/api/v2/search/tag/.http.route/values",
    "/api/v2/search/tag/span.retries/values",
    "/api/v2/search/tag/resource.service.name/values",
    "/api/v2/search/tag/event.cache.key/values",
    "/api/v2/search/tag/link.link.why/values",
    "/api/v2/search/tag/instrumentation.team/values",
    "/api/v2/search/tag/name/values",
    "/api/v2/search/tag/kind/values",
    "/api/v2/search/tag/status/values",
    "/api/v2/search/tag/event:name/values",
    "/api/v2/search/tag/instrumentation:name/values",
    "/api/v2/search/tag/instrumentation:version/values",
    "/api/search/tag/http.route/values",
]


def _answers(tempo: httpx.Client) -> dict[str, object]:
    paths = ["/api/v2/search/tags", "/api/search/tags", *VALUE_PATHS]
    return {path: tempo.get(path).json() for path in paths}


def _export_a_shop(service: ServiceFactory) -> None:
    checkout = service("checkout", "http")
    tracer = checkout.get_tracer("shop.cart", "1.2", attributes={"team": "payments"})
    with tracer.start_as_current_span(
        "GET /cart", kind=SpanKind.SERVER, attributes={"http.route": "/cart", "retries": 2}
    ) as root:
        root.add_event("cache miss", {"cache.key": "k1"})
        with tracer.start_as_current_span(
            "SELECT cart", kind=SpanKind.CLIENT, links=[Link(root.get_span_context(), {"link.why": "batch"})]
        ) as child:
            child.set_status(Status(StatusCode.ERROR))
    billing = service("billing", "grpc").get_tracer("billing")
    with billing.start_as_current_span("charge", attributes={"http.route": "/charge"}):
        pass


def test_tags_and_values_right_after_ingest_are_complete_without_reading_a_trace(
    backend: EmbeddedBackend, service: ServiceFactory, tempo: httpx.Client
) -> None:
    index = index_for(backend.store)
    with backend.store.query_gate.admit():  # a query in flight: the index keeper leaves the traces unread
        _export_a_shop(service)
        before = _answers(tempo)
        assert index.refresh(budget=0) is True  # every trace still to read
    assert index.refresh() is False

    assert _answers(tempo) == before
    scopes = {scope["name"]: scope["tags"] for scope in before["/api/v2/search/tags"]["scopes"]}  # type: ignore[index]
    assert scopes["span"] == ["http.route", "retries"]
    assert "service.name" in scopes["resource"]
    assert (scopes["event"], scopes["link"], scopes["instrumentation"]) == (
        ["cache.key"],
        ["link.why"],
        ["team"],
    )

    def values(path: str) -> list[tuple[str, str]]:
        return [(one["type"], one["value"]) for one in before[path]["tagValues"]]  # type: ignore[index]

    assert values("/api/v2/search/tag/span.http.route/values") == [("string", "/cart"), ("string", "/charge")]
    assert values("/api/v2/search/tag/span.retries/values") == [("int", "2")]
    assert values("/api/v2/search/tag/resource.service.name/values") == [
        ("string", "billing"),
        ("string", "checkout"),
    ]
    assert values("/api/v2/search/tag/name/values") == [
        ("string", "GET /cart"),
        ("string", "SELECT cart"),
        ("string", "charge"),
    ]
    assert values("/api/v2/search/tag/kind/values") == [
        ("keyword", "client"),
        ("keyword", "internal"),
        ("keyword", "server"),
    ]
    assert values("/api/v2/search/tag/status/values") == [("keyword", "error"), ("keyword", "unset")]
    assert values("/api/v2/search/tag/event:name/values") == [("string", "cache miss")]
    assert values("/api/v2/search/tag/instrumentation:version/values") == [("string", "1.2")]


def _request(trace_id: bytes, span_id: bytes, route: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add()
    spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="api"))
    span = spans.scope_spans.add().spans.add(trace_id=trace_id, span_id=span_id, name="GET /x")
    span.attributes.add(key="http.route", value=AnyValue(string_value=route))
    return request


def test_a_request_with_an_invalid_span_is_catalogued_by_reading_it_first() -> None:
    store = TraceStore()
    receiver = Receiver(store)
    index = index_for(store)
    route = Attribute("span", "http.route")
    with store.query_gate.admit():
        receiver.export(_request(b"\x01" * 16, b"\x01" * 8, "/fast"))
        mixed = _request(b"\x02" * 16, b"\x02" * 8, "/slow")
        mixed.resource_spans[0].scope_spans[0].spans.add(trace_id=b"\x03" * 16, span_id=bytes(8))  # rejected
        assert receiver.export(mixed).partial_success.rejected_spans == 1
        assert index.catalogue_complete() is False  # its spans were stored without their facts

        values = tag_values_v2(store, route, None)["tagValues"]

        assert [value["value"] for value in values] == ["/fast", "/slow"]
        assert index.catalogue_complete() is True  # read into the index to answer
        receiver.export(_request(b"\x04" * 16, b"\x04" * 8, "/after"))
        assert [value["value"] for value in tag_values_v2(store, route, None)["tagValues"]] == [
            "/after",
            "/fast",
            "/slow",
        ]
        assert index.refresh(budget=0) is True  # "/after" came from the catalogue of unread requests
        names = tags_v2(store, "span")["scopes"][0]["tags"]
        assert names == ["http.route"]
        assert [value["value"] for value in tag_values_v2(store, Intrinsic("name"), None)["tagValues"]] == [
            "GET /x"
        ]
