"""The queue worker: for each order it looks the item up in inventory.

``python -m tests.tracing.apps.worker MODE QUEUE``: consumes with a callback (``callback``, with a sync
httpx client), with ``queue.iterator()`` (``iterator``; and its ``__anext__()`` under ``wait_for``,
``timeout`` or a ``task``) or with ``queue.get()`` (``get``), the others with an async client. Prints
``ready`` once consuming.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractQueueIterator


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


Pull = Callable[[AbstractQueueIterator], Awaitable[AbstractIncomingMessage]]


async def through_wait_for(messages: AbstractQueueIterator) -> AbstractIncomingMessage:
    return await asyncio.wait_for(messages.__anext__(), 3600)


async def through_timeout(messages: AbstractQueueIterator) -> AbstractIncomingMessage:
    async with asyncio.timeout(3600):
        return await messages.__anext__()


async def through_task(messages: AbstractQueueIterator) -> AbstractIncomingMessage:
    return await asyncio.create_task(messages.__anext__())


def by_iterator_pulled_through(pull: Pull) -> Callable[[AbstractQueue, str], Awaitable[None]]:
    async def consume(queue: AbstractQueue, inventory: str) -> None:
        async with httpx.AsyncClient(base_url=inventory) as client, queue.iterator() as messages:
            print("ready", flush=True)
            while True:
                message = await pull(messages)
                order = json.loads(message.body)["order"]
                await client.get(f"/items/{order}")
                await message.ack()

    return consume


async def by_get(queue: AbstractQueue, inventory: str) -> None:
    async with httpx.AsyncClient(base_url=inventory) as client:
        print("ready", flush=True)
        while True:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)  # polling an empty queue, as get() consumers do
                continue
            async with message.process():
                order = json.loads(message.body)["order"]
                await client.get(f"/items/{order}")


CONSUMERS: dict[str, Callable[[AbstractQueue, str], Awaitable[None]]] = {
    "callback": by_callback,
    "iterator": by_iterator,
    "wait_for": by_iterator_pulled_through(through_wait_for),
    "timeout": by_iterator_pulled_through(through_timeout),
    "task": by_iterator_pulled_through(through_task),
    "get": by_get,
}


async def main(mode: str, queue_name: str) -> None:
    connection = await aio_pika.connect_robust(os.environ["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, auto_delete=True)
        await CONSUMERS[mode](queue, os.environ["INVENTORY_URL"])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
