"""Demo ``worker``: consumes orders with ``queue.iterator()`` and reserves stock at the inventory service.

It contains no tracing code; under ``hoptrace run`` each message's work continues the producer's trace.
Prints ``worker ready`` once consuming. SIGTERM/SIGINT stop it cleanly (so queued spans are flushed).
Configuration: ``DEMO_INVENTORY_URL``, ``AMQP_URL``, ``DEMO_QUEUE``, ``DEMO_WORKER_FIRST_MESSAGE_DELAY_MS``
(default 0): once the first message is queued, wait that long before taking it, a deliberately slow
first message for the harness's own tests (none of the wait is traced: a message's span starts when it is
taken).
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
        # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them server-side:
        # a request sent on a connection the server is closing fails (Server disconnected without a response).
        httpx.AsyncClient(
            base_url=os.environ["DEMO_INVENTORY_URL"], timeout=10.0, limits=httpx.Limits(keepalive_expiry=2.0)
        ) as inventory,
    ):
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=10)
        queue = await channel.declare_queue(os.environ.get("DEMO_QUEUE", "orders"), auto_delete=True)
        print(f"worker ready: consuming {queue.name}", flush=True)
        first_delay_ms = int(os.environ.get("DEMO_WORKER_FIRST_MESSAGE_DELAY_MS") or 0)
        if first_delay_ms > 0:
            await _slow_first_message(queue, first_delay_ms / 1000)
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process(requeue=False):
                    order = json.loads(message.body)
                    response = await inventory.post(f"/reserve/{order['item']}", json=order)
                    print(
                        f"order {order['order_id']}: reserve {order['item']} -> {response.status_code}",
                        flush=True,
                    )


async def _slow_first_message(queue: aio_pika.abc.AbstractQueue, delay: float) -> None:
    """Return ``delay`` seconds after the first message is in ``queue``, not yet taken (so not traced)."""
    while not (await queue.declare()).message_count:  # re-declaring reports the messages waiting
        await asyncio.sleep(0.01)
    await asyncio.sleep(delay)


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
