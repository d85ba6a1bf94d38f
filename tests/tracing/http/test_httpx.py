"""httpx hop: every client kind and transport gets a CLIENT span whose context reaches the server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hoptrace.tracing._http.httpx import instrument_httpx
from tests.tracing.conftest import FinishedSpans

# Made before instrumentation: patching the class must cover existing clients too.
_EARLY_CLIENT = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204)))


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    instrument_httpx()
    yield


def _echo_traceparent(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"traceparent": request.headers.get("traceparent")})


def _traceparent_of(span: trace.Span | object) -> str:
    context = span.get_span_context()  # type: ignore[attr-defined]
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def test_sync_client_with_mock_transport_injects_its_span(spans: FinishedSpans) -> None:
    with httpx.Client(transport=httpx.MockTransport(_echo_traceparent)) as client:
        response = client.get("http://inventory.test/items/1")
    span = spans.named("GET")
    assert span.kind is SpanKind.CLIENT
    assert response.json()["traceparent"] == _traceparent_of(span)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["server.address"] == "inventory.test"


async def test_async_client_with_mock_transport_continues_current_trace(spans: FinishedSpans) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        async with httpx.AsyncClient(transport=httpx.MockTransport(_echo_traceparent)) as client:
            response = await client.post("http://inventory.test/items", json={})
    span = spans.named("POST")
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert response.json()["traceparent"] == _traceparent_of(span)


async def test_async_client_with_asgi_transport_reaches_the_app_with_context(spans: FinishedSpans) -> None:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"traceparent": request.headers.get("traceparent")})

    app = Starlette(routes=[Route("/echo", echo)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        response = await client.get("/echo")
    assert response.json()["traceparent"] == _traceparent_of(spans.named("GET"))


def test_sync_client_with_wsgi_transport_reaches_the_app_with_context(spans: FinishedSpans) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., object]) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [str(environ.get("HTTP_TRACEPARENT")).encode()]

    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://app") as client:
        response = client.get("/")
    assert response.text == _traceparent_of(spans.named("GET"))


class _CountingTransport(httpx.BaseTransport):
    def __init__(self) -> None:
        self.traceparents: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.traceparents.append(request.headers.get("traceparent"))
        return httpx.Response(200)


def test_custom_transport_is_traced(spans: FinishedSpans) -> None:
    transport = _CountingTransport()
    with httpx.Client(transport=transport) as client:
        client.get("http://inventory.test/")
    assert transport.traceparents == [_traceparent_of(spans.named("GET"))]


def test_client_created_before_instrumentation_is_traced(spans: FinishedSpans) -> None:
    _EARLY_CLIENT.get("http://inventory.test/")
    assert spans.named("GET").attributes["http.response.status_code"] == 204  # type: ignore[index]


def test_redirects_get_one_span_per_request_sent(spans: FinishedSpans) -> None:
    def redirect_once(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(307, headers={"location": "/new"})
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(redirect_once), follow_redirects=True) as client:
        client.get("http://inventory.test/old")
    codes = sorted(span.attributes["http.response.status_code"] for span in spans.all())  # type: ignore[index]
    assert codes == [200, 307]


def test_error_status_and_transport_failure_mark_the_span(spans: FinishedSpans) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(503)

    with httpx.Client(transport=httpx.MockTransport(fail)) as client:
        assert client.get("http://inventory.test/busy").status_code == 503
        with pytest.raises(httpx.ConnectError):
            client.get("http://inventory.test/down")
    busy, down = sorted(spans.all(), key=lambda span: span.start_time or 0)
    assert busy.status.status_code is StatusCode.ERROR
    assert busy.attributes is not None and busy.attributes["error.type"] == "503"
    assert down.status.status_code is StatusCode.ERROR
    assert down.status.description == "ConnectError: connection refused"
    assert down.attributes is not None and down.attributes["error.type"] == "ConnectError"
    assert [event.name for event in down.events] == ["exception"]


async def test_cancelled_request_ends_its_span_without_an_error_status(spans: FinishedSpans) -> None:
    # As trace.use_span does: only an Exception (not CancelledError) is an exception event and an ERROR.
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.get("http://inventory.test/slow"), timeout=0.05)
    (span,) = spans.all()
    assert span.attributes is not None and span.attributes["error.type"] == "CancelledError"
    assert span.status.status_code is StatusCode.UNSET and span.events == ()
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_credentials_are_not_recorded_in_the_url(spans: FinishedSpans) -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as client:
        client.get("http://user:secret@inventory.test/items")
    assert spans.named("GET").attributes["url.full"] == "http://inventory.test/items"  # type: ignore[index]


def test_an_internal_instrumentation_error_leaves_the_request_working(
    spans: FinishedSpans, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_tracer() -> trace.Tracer:
        raise RuntimeError("tracer exploded")

    monkeypatch.setattr("hoptrace.tracing._http.httpx.hop_tracer", broken_tracer)
    monkeypatch.setattr("hoptrace.tracing._tracer._reported", set())
    with httpx.Client(transport=httpx.MockTransport(_echo_traceparent)) as client:
        responses = [client.get("http://inventory.test/") for _ in range(2)]
    assert [response.json() for response in responses] == [{"traceparent": None}] * 2
    assert spans.all() == []
    warnings = [record.getMessage() for record in caplog.records if record.name == "hoptrace.tracing"]
    assert warnings == [
        "hoptrace: httpx request runs untraced after an internal error: RuntimeError('tracer exploded')"
    ]
