"""The queue worker: for each order it looks the item up in inventory.

``python -m tests.tracing.apps.worker callback|iterator QUEUE``: consumes with a callback (and a sync
httpx client) or with ``queue.iterator()`` (and an async client). Prints ``ready`` once consuming.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue


async def by_callback(queue: AbstractQueue, inventory: str) -> None:
    client = httpx.Client(base_url=inventory)

    async def on_message(message: AbstractIncomingMessage) -> None:
        async with message.process():
            order = json.loads(message.body)["order"]
            await asyncio.to_thread(client.get, f"/items/{order}")

    await queue.consume(on_message)
    print("ready", flush=True)
    await asyncio.Future()


async def by_iterator(queue: AbstractQueue, inventory: str) -> None:
    async with httpx.AsyncClient(base_url=inventory) as client, queue.iterator() as messages:
        print("ready", flush=True)
        async for message in messages:
            async with message.process():
                order = json.loads(message.body)["order"]
                await client.get(f"/items/{order}")


async def main(mode: str, queue_name: str) -> None:
    connection = await aio_pika.connect_robust(os.environ["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, auto_delete=True)
        consume = by_callback if mode == "callback" else by_iterator
        await consume(queue, os.environ["INVENTORY_URL"])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
