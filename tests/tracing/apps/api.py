"""The edge service: looks items up over HTTP and publishes orders to RabbitMQ.

Configured by ``INVENTORY_URL`` and ``AMQP_URL``; ``POST /orders/{order_id}/publish/{queue}`` publishes
through the default exchange to that queue, and so does
``POST /v2/tenants/{tenant}/shop/orders/{order_id}/publish/{queue}``: a FastAPI app whose router is
included with a prefix, mounted two ``Mount`` levels deep.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import httpx
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

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


orders = APIRouter(prefix="/orders")


@orders.post("/{order_id}/publish/{queue}", status_code=202)
async def publish_order_from_shop(order_id: str, queue: str) -> dict[str, bool]:
    channel = state["channel"]
    assert isinstance(channel, aio_pika.abc.AbstractChannel)
    body = json.dumps({"order": order_id}).encode()
    await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
    return {"published": True}


shop = FastAPI()
shop.include_router(orders, prefix="/shop")

app = Starlette(
    routes=[
        Route("/orders/{order_id}", get_order),
        Route("/orders/{order_id}/publish/{queue}", publish_order, methods=["POST"]),
        Mount("/v2", routes=[Mount("/tenants/{tenant}", app=shop)]),
    ],
    lifespan=lifespan,
)
