"""The innermost service: answers item look-ups."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def item(request: Request) -> JSONResponse:
    # Echoes the baggage it received, so tests can see what crossed the hop.
    return JSONResponse({"item": request.path_params["item_id"], "baggage": request.headers.get("baggage")})


app = Starlette(routes=[Route("/items/{item_id}", item)])
