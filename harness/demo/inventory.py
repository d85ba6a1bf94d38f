"""Demo ``inventory``: an ASGI stock service. It contains no tracing code; ``hoptrace run`` traces it.

``GET /stock/{item}`` answers the quantity available (404 for unknown items). ``POST /reserve/{item}``
reserves stock; reserving ``unobtainium`` fails with 500 on purpose, so the demo has an ERROR trace.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FAILING_ITEM = "unobtainium"
STOCK = {"widget": 1000, "gadget": 100, FAILING_ITEM: 1}


async def stock(request: Request) -> Response:
    item = request.path_params["item"]
    if item not in STOCK:
        return JSONResponse({"error": f"unknown item {item}"}, status_code=404)
    return JSONResponse({"item": item, "available": STOCK[item]})


async def reserve(request: Request) -> Response:
    item = request.path_params["item"]
    if item == FAILING_ITEM:
        return JSONResponse({"error": "supplier unreachable"}, status_code=500)
    if item not in STOCK:
        return JSONResponse({"error": f"unknown item {item}"}, status_code=404)
    return JSONResponse({"item": item, "reserved": True})


app = Starlette(
    routes=[
        Route("/stock/{item}", stock, methods=["GET"]),
        Route("/reserve/{item}", reserve, methods=["POST"]),
    ]
)
