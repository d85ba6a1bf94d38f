"""The two queue services of ``bench/service_cost.py``; like the demo's, they contain no tracing code.

``python bench/cost_services.py worker``: consumes ``$DEMO_QUEUE`` with ``queue.iterator()``, reserves the
item at ``$DEMO_INVENTORY_URL`` and publishes the order again to ``$DEMO_NEXT_QUEUE``.
``python bench/cost_services.py consumer``: consumes ``$DEMO_NEXT_QUEUE`` with a callback and prints one
``done`` line per message (the benchmark counts them to know the work is finished).
Both print ``ready`` once consuming, and stop cleanly on SIGTERM/SIGINT (so queued spans are flushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys

import aio_pika
import httpx

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/")


async def worker() -> None:
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with (
        connection,
        # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them server-side:
        # a request sent on a connection the server is closing fails (Server disconnected without a response).
        httpx.AsyncClient(
            base_url=os.environ["DEMO_INVENTORY_URL"], timeout=10.0, limits=httpx.Limits(keepalive_expiry=2.0)
        ) as inventory,
    ):
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=10)
        queue = await channel.declare_queue(os.environ["DEMO_QUEUE"], auto_delete=True)
        await channel.declare_queue(os.environ["DEMO_NEXT_QUEUE"], auto_delete=True)
        print("worker ready", flush=True)
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process(requeue=False):
                    order = json.loads(message.body)
                    await inventory.post(f"/reserve/{order['item']}", json=order)
                    await channel.default_exchange.publish(
                        aio_pika.Message(message.body, content_type="application/json"),
                        routing_key=os.environ["DEMO_NEXT_QUEUE"],
                    )


async def consumer() -> None:
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=10)
        queue = await channel.declare_queue(os.environ["DEMO_NEXT_QUEUE"], auto_delete=True)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process(requeue=False):
                print("done", flush=True)

        await queue.consume(on_message)
        print("consumer ready", flush=True)
        await asyncio.Future()


async def run_until_signal(role: str) -> None:
    """Run ``role`` until SIGTERM or SIGINT cancels it."""
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await {"worker": worker, "consumer": consumer}[role]()


if __name__ == "__main__":
    asyncio.run(run_until_signal(sys.argv[1]))
