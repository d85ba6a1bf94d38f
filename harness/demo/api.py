"""Demo ``api``: an ASGI service taking orders. It contains no tracing code; ``hoptrace run`` traces it.

``POST /orders {"item": ..., "quantity": n}`` checks stock at the inventory service over HTTP, then publishes
the order to the RabbitMQ queue ``$DEMO_QUEUE`` for the worker, and answers 202. Unknown items get 404.
Configuration: ``DEMO_INVENTORY_URL``, ``AMQP_URL``, ``DEMO_QUEUE``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    connection = await aio_pika.connect_robust(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/"))
    channel = await connection.channel()
    queue = os.environ.get("DEMO_QUEUE", "orders")
    await channel.declare_queue(queue, auto_delete=True)
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them server-side:
    # a request sent on a connection the server is closing fails (Server disconnected without a response).
    async with httpx.AsyncClient(
        base_url=os.environ["DEMO_INVENTORY_URL"], timeout=10.0, limits=httpx.Limits(keepalive_expiry=2.0)
    ) as inventory:
        app.state.channel, app.state.queue, app.state.inventory = channel, queue, inventory
        yield
    await connection.close()


async def create_order(request: Request) -> Response:
    body = await request.json()
    item, quantity = str(body["item"]), int(body.get("quantity", 1))
    stock = await request.app.state.inventory.get(f"/stock/{item}")
    if stock.status_code == 404:
        return JSONResponse({"error": f"unknown item {item}"}, status_code=404)
    order = {"order_id": uuid.uuid4().hex, "item": item, "quantity": quantity}
    message = aio_pika.Message(json.dumps(order).encode(), content_type="application/json")
    await request.app.state.channel.default_exchange.publish(message, routing_key=request.app.state.queue)
    return JSONResponse({**order, "status": "accepted"}, status_code=202)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/orders", create_order, methods=["POST"]), Route("/health", health)], lifespan=lifespan
)
