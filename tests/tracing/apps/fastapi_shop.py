"""Two FastAPI services for the zero-code FastAPI tests: ``edge`` and ``orders``. Plain FastAPI code, no
hoptrace import: the bootstrap does everything under ``hoptrace run``.

- ``edge``: ``POST /orders/{order_id}`` calls ``orders`` over httpx (``ORDERS_URL``) and returns what that
  service saw.
- ``orders``: ``POST /orders/{order_id}`` (with a dependency, as real services have) publishes the order to
  the RabbitMQ queue ``QUEUE`` (``AMQP_URL``) and echoes the ``baggage`` header it received;
  ``GET /items/{item_id}`` answers the worker's look-ups. ``GET /counts`` returns
  ``hoptrace.tracing.counts()`` so tests can see what the service counted instead of logging.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import aio_pika
import httpx
from fastapi import Depends, FastAPI, Request

state: dict[str, Any] = {}


@asynccontextmanager
async def edge_lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with httpx.AsyncClient(base_url=os.environ["ORDERS_URL"]) as client:
        state["http"] = client
        yield


edge = FastAPI(lifespan=edge_lifespan)


@edge.post("/orders/{order_id}")
async def forward_order(order_id: str) -> dict[str, Any]:
    response = await state["http"].post(f"/orders/{order_id}")
    response.raise_for_status()
    return {"orders": response.json()}


@asynccontextmanager
async def orders_lifespan(app: FastAPI) -> AsyncIterator[None]:
    connection = await aio_pika.connect_robust(os.environ["AMQP_URL"])
    async with connection:
        state["channel"] = await connection.channel()
        yield


orders = FastAPI(lifespan=orders_lifespan)


def order_number(order_id: str) -> int:
    return int(order_id)


@orders.post("/orders/{order_id}", status_code=202)
async def publish_order(number: Annotated[int, Depends(order_number)], request: Request) -> dict[str, Any]:
    body = json.dumps({"order": number}).encode()
    await state["channel"].default_exchange.publish(aio_pika.Message(body), routing_key=os.environ["QUEUE"])
    return {"published": number, "baggage": request.headers.get("baggage")}


@orders.get("/items/{item_id}")
async def item(item_id: str) -> dict[str, str]:
    return {"item": item_id}


@edge.get("/counts")
@orders.get("/counts")
async def counts() -> dict[str, int]:
    import hoptrace.tracing

    return hoptrace.tracing.counts()
