"""Demo ``worker``: consumes orders and reserves stock at the inventory service.

``DEMO_CONSUMER=iterator`` (the default) consumes with ``async with queue.iterator()`` and an async httpx
client; ``DEMO_CONSUMER=callback`` with ``queue.consume(callback)`` and a sync httpx client run in a thread.
Both are ways people write consumers, and both must continue the producer's trace.

It contains no tracing code; under ``hoptrace run`` each message's work continues the producer's trace.
Prints ``worker ready`` once consuming. SIGTERM/SIGINT stop it cleanly (so queued spans are flushed).
Configuration: ``DEMO_INVENTORY_URL``, ``AMQP_URL``, ``DEMO_QUEUE``, ``DEMO_CONSUMER``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue


async def consume() -> None:
    connection = await aio_pika.connect_robust(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/"))
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=10)
        queue = await channel.declare_queue(os.environ.get("DEMO_QUEUE", "orders"), auto_delete=True)
        if os.environ.get("DEMO_CONSUMER", "iterator") == "callback":
            await _by_callback(queue)
        else:
            await _by_iterator(queue)


async def _by_iterator(queue: AbstractQueue) -> None:
    async with (
        httpx.AsyncClient(base_url=os.environ["DEMO_INVENTORY_URL"], timeout=10.0) as inventory,
        queue.iterator() as messages,
    ):
        print(f"worker ready: consuming {queue.name}", flush=True)
        async for message in messages:
            async with message.process(requeue=False):
                order = json.loads(message.body)
                response = await inventory.post(f"/reserve/{order['item']}", json=order)
                _report(order, response.status_code)


async def _by_callback(queue: AbstractQueue) -> None:
    with httpx.Client(base_url=os.environ["DEMO_INVENTORY_URL"], timeout=10.0) as inventory:

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process(requeue=False):
                order = json.loads(message.body)
                response = await asyncio.to_thread(inventory.post, f"/reserve/{order['item']}", json=order)
                _report(order, response.status_code)

        await queue.consume(on_message)
        print(f"worker ready: consuming {queue.name}", flush=True)
        await asyncio.Future()  # until cancelled by SIGTERM/SIGINT


def _report(order: dict[str, str], status: int) -> None:
    print(f"order {order['order_id']}: reserve {order['item']} -> {status}", flush=True)


def main() -> None:
    loop = asyncio.new_event_loop()
    task = loop.create_task(consume())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


if __name__ == "__main__":
    main()
