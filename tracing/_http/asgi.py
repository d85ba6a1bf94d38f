"""ASGI server hop: one SERVER span per HTTP request, continuing the caller's trace, named after the route.

hoptrace ships its own middleware rather than upstream's ``OpenTelemetryMiddleware`` because upstream names
the span after the raw path (``GET /orders/42``, unbounded cardinality), cannot apply the edge rule to
inbound baggage, and adds two internal spans per request (``http send``/``http receive``).

Zero-code: :func:`instrument_uvicorn` wraps the application uvicorn loads (``Config.load``), so every
uvicorn worker, including ``--workers`` and ``--reload`` children, serves through the middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode

from hoptrace.tracing._http.asgi_routes import (
    instrument_loaded_starlette,
    matched_route_template,
    route_template,
)
from hoptrace.tracing._propagation import EdgePolicy, header_lists, inbound_context, inbound_header_names
from hoptrace.tracing._tracer import hop_tracer, instrumentation_failed

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TracingMiddleware:
    """ASGI middleware tracing HTTP requests; websocket and lifespan pass through untouched.

    The span is named ``{method} {route template}`` (e.g. ``GET /api/orders/{order_id}``, mount prefixes
    included) when the framework records the matched route in the scope (Starlette and FastAPI do), else
    just ``{method}``: never the raw path. 5xx responses and exceptions mark the span as an error.
    Async-safe; never raises its own errors into the request.
    """

    def __init__(self, app: ASGIApp, policy: EdgePolicy | None = None) -> None:
        self.app = app
        self.policy = policy if policy is not None else EdgePolicy()
        # Set once a request shows that the framework records its route (Starlette 1.x, FastAPI on it):
        # from then on no request pays for the copy the matching fallback needs.
        self._framework_records_route = False
        # The headers the installed propagators read (None: all), for the textmap they were read from.
        self._textmap: TextMapPropagator | None = None
        self._header_names: frozenset[bytes] | None = None
        instrument_loaded_starlette()  # mount prefixes, also when the middleware is added by hand

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "HTTP"))
        # Routers rewrite the scope as they descend: the matching fallback needs it as the server passed it.
        request_scope = None if self._framework_records_route else dict(scope)
        try:
            textmap = propagate.get_global_textmap()
            if textmap is not self._textmap:
                self._textmap, self._header_names = textmap, inbound_header_names(self.policy)
            headers = header_lists(scope.get("headers") or (), self._header_names)
            parent = inbound_context(headers, self.policy, context.Context())
            span = hop_tracer().start_span(
                method, context=parent, kind=SpanKind.SERVER, attributes=_request_attributes(scope, method)
            )
        except Exception as exc:
            instrumentation_failed("ASGI request", exc)
            await self.app(scope, receive, send)
            return
        token = context.attach(trace.set_span_in_context(span, parent))

        async def traced_send(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        try:
            await self.app(scope, receive, traced_send)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise
        finally:
            route = route_template(scope)
            if route is not None:
                self._framework_records_route = True
            elif request_scope is not None:
                route = matched_route_template(self.app, request_scope)
            if route is not None:
                span.set_attribute("http.route", route)
                span.update_name(f"{method} {route}")
            span.end()
            context.detach(token)


def _request_attributes(scope: Scope, method: str) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.scheme": str(scope.get("scheme", "http")),
        "url.path": str(scope.get("path", "")),
    }
    server = scope.get("server")
    if server and server[0] is not None:
        attributes["server.address"] = str(server[0])
        if server[1] is not None:
            attributes["server.port"] = int(server[1])
    client = scope.get("client")
    if client:
        attributes["client.address"] = str(client[0])
    return attributes


def instrument_uvicorn(config_module: ModuleType, policy: EdgePolicy) -> None:
    """Make uvicorn serve every application it loads through :class:`TracingMiddleware`. Idempotent.

    ``config_module`` is ``uvicorn.config`` (passed in: it is instrumented while ``uvicorn`` itself is
    still being imported)."""
    config_class = config_module.Config
    if getattr(config_class, "_hoptrace_patched", False):
        return

    def load(
        wrapped: Callable[[], None], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        wrapped(*args, **kwargs)
        if not isinstance(instance.loaded_app, TracingMiddleware):
            instance.loaded_app = TracingMiddleware(instance.loaded_app, policy)

    wrapt.wrap_function_wrapper(config_class, "load", load)
    config_class._hoptrace_patched = True
