"""ASGI server hop: SERVER spans named after the route template, continuing the caller, edge rule applied."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry import baggage, propagate
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Host, Mount, Route

from hoptrace.processors import TENANT_KEY
from hoptrace.tracing import TracingMiddleware
from hoptrace.tracing._propagation import EdgePolicy
from tests.tracing.conftest import FinishedSpans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def _order(request: Request) -> JSONResponse:
    return JSONResponse({"tenant": baggage.get_baggage(TENANT_KEY)})


async def _boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("boom")


def _client(policy: EdgePolicy | None = None) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/orders/{order_id}", _order), Route("/boom", _boom)])
    transport = httpx.ASGITransport(app=TracingMiddleware(app, policy), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api")


def _server_span(spans: FinishedSpans) -> object:
    (server,) = [span for span in spans.all() if span.kind is SpanKind.SERVER]
    return server


async def test_server_span_is_named_after_the_route_template_and_continues_the_trace(
    spans: FinishedSpans,
) -> None:
    async with _client() as client:
        await client.get("/orders/42", headers={"traceparent": TRACEPARENT})
    server = spans.named("GET /orders/{order_id}")
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and server.parent.span_id == 0x00F067AA0BA902B7
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/orders/{order_id}"
    assert server.attributes["http.response.status_code"] == 200


async def test_unmatched_path_is_named_by_method_only(spans: FinishedSpans) -> None:
    async with _client() as client:
        assert (await client.get("/no/such/path")).status_code == 404
    assert [span.name for span in spans.all()] == ["GET"]


async def test_exception_in_the_app_marks_the_server_span_as_error(spans: FinishedSpans) -> None:
    async with _client() as client:
        assert (await client.get("/boom")).status_code == 500
    server = spans.named("GET /boom")
    assert server.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-" + "g" * 32 + "-" + "1" * 16 + "-01",
    ],
)
async def test_malformed_traceparent_starts_a_fresh_trace(spans: FinishedSpans, traceparent: str) -> None:
    headers = {"traceparent": traceparent, "tracestate": "===,bad", "baggage": ";;;=,=="}
    async with _client() as client:
        assert (await client.get("/orders/1", headers=headers)).status_code == 200
    server = spans.named("GET /orders/{order_id}")
    assert server.parent is None
    assert server.context.trace_id != 0


async def test_edge_drops_inbound_baggage_and_takes_the_tenant_from_its_header(spans: FinishedSpans) -> None:
    policy = EdgePolicy(edge=True, tenant_header="x-tenant-id")
    headers = {"baggage": "tenant.id=evil,other=1", "x-tenant-id": "acme"}
    async with _client(policy) as client:
        seen = (await client.get("/orders/1", headers=headers)).json()
    assert seen == {"tenant": "acme"}
    assert spans.named("GET /orders/{order_id}").attributes[TENANT_KEY] == "acme"  # type: ignore[index]


async def test_edge_without_tenant_header_value_has_no_tenant(spans: FinishedSpans) -> None:
    policy = EdgePolicy(edge=True, tenant_header="x-tenant-id")
    async with _client(policy) as client:
        seen = (await client.get("/orders/1", headers={"baggage": "tenant.id=evil"})).json()
    assert seen == {"tenant": None}
    assert TENANT_KEY not in (spans.named("GET /orders/{order_id}").attributes or {})


async def test_trusted_edge_keeps_inbound_baggage(spans: FinishedSpans) -> None:
    policy = EdgePolicy(edge=True, trust_inbound_baggage=True, tenant_header="x-tenant-id")
    async with _client(policy) as client:
        seen = (await client.get("/orders/1", headers={"baggage": "tenant.id=globex"})).json()
    assert seen == {"tenant": "globex"}


async def test_internal_service_keeps_the_baggage_of_its_caller(spans: FinishedSpans) -> None:
    async with _client(EdgePolicy(edge=False)) as client:
        seen = (await client.get("/orders/1", headers={"baggage": "tenant.id=initech"})).json()
    assert seen == {"tenant": "initech"}


async def test_invalid_tenant_is_dropped_not_propagated(spans: FinishedSpans) -> None:
    policy = EdgePolicy(edge=True, tenant_header="x-tenant-id")
    async with _client(policy) as client:
        seen = (await client.get("/orders/1", headers={"x-tenant-id": "acme corp;drop table"})).json()
    assert seen == {"tenant": None}


async def test_oversized_baggage_is_dropped(spans: FinishedSpans) -> None:
    huge = "tenant.id=initech," + ",".join(f"k{i}={'v' * 40}" for i in range(400))
    async with _client(EdgePolicy(edge=False)) as client:
        seen = (await client.get("/orders/1", headers={"baggage": huge})).json()
    assert seen == {"tenant": None}


class _HeaderNamesPropagator(TextMapPropagator):
    """Not one of hoptrace's: puts the names of every header it can list into baggage (``seen``)."""

    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        return baggage.set_baggage("seen", ",".join(sorted(getter.keys(carrier))), context)

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


async def _seen_headers(request: Request) -> JSONResponse:
    return JSONResponse({"seen": baggage.get_baggage("seen"), "tenant": baggage.get_baggage(TENANT_KEY)})


async def test_a_propagator_that_is_not_hoptraces_still_reads_every_header(spans: FinishedSpans) -> None:
    # hoptrace's W3C propagators read only their own headers, so the middleware decodes only those; any
    # other propagator (b3, jaeger, a user's) may list the headers, and gets them all.
    app = Starlette(routes=[Route("/seen", _seen_headers)])
    transport = httpx.ASGITransport(app=TracingMiddleware(app, EdgePolicy()))
    w3c = propagate.get_global_textmap()
    headers = {"x-custom": "1", "traceparent": TRACEPARENT, "baggage": "tenant.id=initech"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/seen", headers=headers)).json() == {"seen": None, "tenant": "initech"}
        propagate.set_global_textmap(CompositePropagator([w3c, _HeaderNamesPropagator()]))
        try:
            seen = (await client.get("/seen", headers=headers)).json()
        finally:
            propagate.set_global_textmap(w3c)
    assert "x-custom" in seen["seen"].split(",") and seen["tenant"] == "initech"
    first, second = sorted(spans.all(), key=lambda span: span.start_time or 0)
    assert format(second.context.trace_id, "032x") == format(first.context.trace_id, "032x") == TRACE_ID


async def test_websocket_and_lifespan_scopes_pass_through_untraced(spans: FinishedSpans) -> None:
    received: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        received.append(str(scope["type"]))

    middleware = TracingMiddleware(app)  # type: ignore[arg-type]

    async def no_receive() -> dict[str, object]:
        return {}

    async def no_send(message: dict[str, object]) -> None:
        return None

    await middleware({"type": "lifespan"}, no_receive, no_send)
    assert received == ["lifespan"]
    assert spans.all() == []


async def test_mounted_and_host_routed_apps_are_named_with_the_full_template(spans: FinishedSpans) -> None:
    inner = Starlette(routes=[Route("/items/{item_id:int}", _order)])
    app = Starlette(
        routes=[
            Host(
                "admin.example", app=Starlette(routes=[Mount("/v1", routes=[Route("/users/{name}", _order)])])
            ),
            Mount("/api", routes=[Mount("/shop/{shop_id:int}", app=inner)]),
            Mount("/other", app=inner),
        ]
    )
    transport = httpx.ASGITransport(app=TracingMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/api/shop/3/items/7")).status_code == 200
        assert (await client.get("/other/items/7")).status_code == 200
        assert (await client.get("http://admin.example/v1/users/bob")).status_code == 200
    assert sorted(span.name for span in spans.all()) == [
        "GET /api/shop/{shop_id}/items/{item_id}",
        "GET /other/items/{item_id}",
        "GET /v1/users/{name}",
    ]
