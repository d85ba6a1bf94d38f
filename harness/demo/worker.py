"""Demo ``worker``: consumes orders with ``queue.iterator()`` and reserves stock at the inventory service.

It contains no tracing code; under ``hoptrace run`` each message's work continues the producer's trace.
Prints ``worker ready`` once consuming. SIGTERM/SIGINT stop it cleanly (so queued spans are flushed).
Configuration: ``DEMO_INVENTORY_URL``, ``AMQP_URL``, ``DEMO_QUEUE``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import aio_pika
import httpx


async def consume() -> None:
    connection = await aio_pika.connect_robust(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/"))
    async with (
        connection,
        httpx.AsyncClient(base_url=os.environ["DEMO_INVENTORY_URL"], timeout=10.0) as inventory,
    ):
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=10)
        queue = await channel.declare_queue(os.environ.get("DEMO_QUEUE", "orders"), auto_delete=True)
        print(f"worker ready: consuming {queue.name}", flush=True)
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process(requeue=False):
                    order = json.loads(message.body)
                    response = await inventory.post(f"/reserve/{order['item']}", json=order)
                    print(
                        f"order {order['order_id']}: reserve {order['item']} -> {response.status_code}",
                        flush=True,
                    )


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
