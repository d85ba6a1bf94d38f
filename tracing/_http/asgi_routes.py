"""The full route template of a request (``/api/items/{item_id}``), through any depth of ``Mount``/``Host``.

Starlette's routers record only the innermost matched route in ``scope["route"]``; a ``Mount`` prefix is
lost, so two mounted apps with the same inner routes would share one span name (and one RED series).
:func:`instrument_starlette_mounts` makes each matched ``Mount`` add its path template to the child scope
under :data:`MOUNT_PREFIX_KEY`, so the prefixes of nested mounts add up. A ``Host`` adds nothing: the
semantic conventions' ``http.route`` is a path template. FastAPI (0.165) routes an ``include_router``
prefix without ``Mount``: its own scope entry holds the route's full template, read as FastAPI's own
telemetry reads it (there is no public accessor).

Starlette before 1.x records no ``scope["route"]`` at all: :func:`matched_route_template` then asks the app's
own routes which one matches (``route.matches(scope)``, as the router does), through the same ``Mount`` and
``Host`` nesting. It costs one more match per request, on those versions only.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

import wrapt

Scope = MutableMapping[str, Any]

MOUNT_PREFIX_KEY = "hoptrace.mount_prefix"
"""Scope key: the path templates of the ``Mount`` routes matched so far, joined (``/api/v1``)."""

_MOUNT_TAIL = "/{path}"  # what Mount appends to its own path to capture the rest of the URL


def instrument_starlette_mounts(routing_module: ModuleType) -> None:
    """Make every ``starlette.routing.Mount`` record its prefix in the scope it matches. Idempotent."""
    mount_class = routing_module.Mount
    if getattr(mount_class, "_hoptrace_patched", False):
        return
    wrapt.wrap_function_wrapper(mount_class, "matches", _mount_matches)
    mount_class._hoptrace_patched = True


def _mount_matches(
    wrapped: Callable[..., tuple[Any, Scope]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Scope]:
    match, child_scope = wrapped(*args, **kwargs)
    if child_scope:  # a match: the router merges child_scope into the scope it passes down
        scope = args[0] if args else kwargs["scope"]
        path_format = getattr(instance, "path_format", None)
        if isinstance(path_format, str):
            child_scope[MOUNT_PREFIX_KEY] = scope.get(MOUNT_PREFIX_KEY, "") + path_format.removesuffix(
                _MOUNT_TAIL
            )
    return match, child_scope


def route_template(scope: Scope) -> str | None:
    """The matched route's full path template, mount prefixes included, or ``None`` when none matched."""
    route = scope.get("route")
    prefix = scope.get(MOUNT_PREFIX_KEY, "")
    if getattr(type(route), "_hoptrace_patched", False):
        # The innermost match is a Mount serving a plain ASGI app (static files...): its prefix is counted.
        return (prefix or "") + _MOUNT_TAIL
    inner = _fastapi_template(scope, route) or _template_of(route)
    if inner is None:
        return None
    return prefix + inner if isinstance(prefix, str) else inner


def _template_of(route: object) -> str | None:
    for attribute in ("path_format", "path"):
        value = getattr(route, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def _fastapi_template(scope: Scope, route: object) -> str | None:
    fastapi_scope = scope.get("fastapi")
    if not isinstance(fastapi_scope, dict):
        return None
    context = fastapi_scope.get("effective_route_context")
    # Only when it describes this route: a mounted app's request may carry an outer app's context.
    if context is None or getattr(context, "original_route", None) is not route:
        return None
    return _template_of(getattr(context, "starlette_route", None)) or _template_of(context)


def instrument_loaded_starlette() -> None:
    """Instrument ``Mount`` now if Starlette is imported (the bootstrap's hook covers later imports)."""
    routing_module = sys.modules.get("starlette.routing")
    if routing_module is not None:
        instrument_starlette_mounts(routing_module)


def matched_route_template(app: object, scope: Scope) -> str | None:
    """The template of the route that ``scope`` (as the server passed it) matches among ``app``'s routes,
    mount prefixes included, or ``None``. For frameworks that do not record the route. Never raises."""
    try:
        return _match(_routes_of(app), scope, "")
    except Exception:  # a router we do not know: the span keeps its method-only name
        return None


def _routes_of(app: object) -> list[Any] | None:
    # Through middleware layers (uvicorn's, the user's) to the first object holding a route list.
    for _ in range(16):
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _match(routes: list[Any] | None, scope: Scope, prefix: str) -> str | None:
    for route in routes or ():
        match, child_scope = route.matches(scope)
        if getattr(match, "name", None) != "FULL":
            continue
        inner = getattr(route, "routes", None)
        if isinstance(inner, list) and inner:  # Mount (adds its path) or Host (adds nothing)
            mount_path = _CONVERTOR.sub("}", getattr(route, "path", ""))
            return _match(inner, {**scope, **child_scope}, prefix + mount_path)
        template = _template_of(route)
        return prefix + template if template is not None else None
    return None


# "/users/{user_id:int}" -> "/users/{user_id}", as a route's path_format writes it.
_CONVERTOR = re.compile(r":[a-zA-Z_]+}")
