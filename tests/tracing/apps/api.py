"""The edge service: looks items up over HTTP and publishes orders to RabbitMQ.

Configured by ``INVENTORY_URL`` and ``AMQP_URL``; ``POST /orders/{order_id}/publish/{queue}`` publishes
through the default exchange to that queue.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

state: dict[str, object] = {}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    connection = await aio_pika.connect_robust(os.environ["AMQP_URL"])
    state["channel"] = await connection.channel()
    state["http"] = httpx.AsyncClient(base_url=os.environ["INVENTORY_URL"])
    yield
    await connection.close()


async def get_order(request: Request) -> JSONResponse:
    client = state["http"]
    assert isinstance(client, httpx.AsyncClient)
    response = await client.get(f"/items/{request.path_params['order_id']}")
    return JSONResponse({"order": request.path_params["order_id"], "inventory": response.json()})


async def publish_order(request: Request) -> JSONResponse:
    channel = state["channel"]
    assert isinstance(channel, aio_pika.abc.AbstractChannel)
    body = json.dumps({"order": request.path_params["order_id"]}).encode()
    await channel.default_exchange.publish(aio_pika.Message(body), routing_key=request.path_params["queue"])
    return JSONResponse({"published": True}, status_code=202)


app = Starlette(
    routes=[
        Route("/orders/{order_id}", get_order),
        Route("/orders/{order_id}/publish/{queue}", publish_order, methods=["POST"]),
    ],
    lifespan=lifespan,
)
