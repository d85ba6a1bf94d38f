"""Route templates through ``Mount`` and ``Host`` (Starlette) and ``include_router`` (FastAPI)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Mount, Route
from starlette.types import ASGIApp

from hoptrace.tracing import TracingMiddleware
from tests.tracing.conftest import FinishedSpans


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _items() -> Starlette:
    return Starlette(routes=[Route("/items/{item_id}", _ok)])


async def _server_spans(app: ASGIApp, spans: FinishedSpans, *paths: str, host: str = "api") -> list[str]:
    transport = httpx.ASGITransport(app=TracingMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        for path in paths:
            assert (await client.get(path)).status_code == 200, path
    # hoptrace's own spans: FastAPI's built-in telemetry adds SERVER spans of its own (DESIGN.md).
    found = [
        span
        for span in spans.all()
        if span.kind is SpanKind.SERVER
        and span.instrumentation_scope is not None
        and span.instrumentation_scope.name == "hoptrace"
    ]
    for span in found:
        assert span.attributes is not None
        assert span.name == f"GET {span.attributes['http.route']}"
    return [span.name for span in found]


async def test_mounted_apps_with_the_same_inner_routes_get_distinct_names(spans: FinishedSpans) -> None:
    app = Starlette(routes=[Mount("/api", app=_items()), Mount("/admin", app=_items())])
    names = await _server_spans(app, spans, "/api/items/1", "/admin/items/2")
    assert names == ["GET /api/items/{item_id}", "GET /admin/items/{item_id}"]


async def test_nested_mounts_and_a_host_add_up_their_path_templates(spans: FinishedSpans) -> None:
    tenants = Mount("/tenants/{tenant_id}", routes=[Mount("/v1", app=_items()), Route("/health", _ok)])
    app = Starlette(
        routes=[Host("{sub}.example.com", app=Starlette(routes=[Mount("/api", routes=[tenants])]))]
    )
    names = await _server_spans(
        app, spans, "/api/tenants/acme/v1/items/7", "/api/tenants/acme/health", host="eu.example.com"
    )
    assert names == ["GET /api/tenants/{tenant_id}/v1/items/{item_id}", "GET /api/tenants/{tenant_id}/health"]


async def test_a_mount_serving_a_plain_asgi_app_is_named_by_its_prefix(spans: FinishedSpans) -> None:
    app = Starlette(routes=[Mount("/static", app=PlainTextResponse("file"))])
    assert await _server_spans(app, spans, "/static/css/site.css") == ["GET /static/{path}"]


async def test_fastapi_include_router_prefixes_and_mounted_fastapi_apps(spans: FinishedSpans) -> None:
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    v1 = APIRouter(prefix="/v1")
    v1.include_router(items)
    app = FastAPI()
    app.include_router(v1, prefix="/api")
    app.mount("/partners/{partner}", _fastapi_with(items))
    names = await _server_spans(app, spans, "/api/v1/items/3", "/partners/acme/shop/items/4")
    assert names == ["GET /api/v1/items/{item_id}", "GET /partners/{partner}/shop/items/{item_id}"]


def _fastapi_with(router: APIRouter) -> FastAPI:
    app = FastAPI()
    app.include_router(router, prefix="/shop")
    return app
