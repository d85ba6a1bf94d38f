"""RPC over RabbitMQ, as in aio-pika's RPC pattern: each client has its own server-named reply queue.

``python -m tests.tracing.apps.rpc server QUEUE``: answers every request on QUEUE to its ``reply_to``.
``python -m tests.tracing.apps.rpc clients QUEUE N``: N separate clients, each with its own channel and
its own exclusive, server-named reply queue (``amq.gen-…``), make one call each, 50 at a time. Prints
``ready`` once consuming (server) or ``done N`` once every reply came back (clients), then keeps running
until terminated, so that its ``/metrics`` can be scraped.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

AT_ONCE = 50
REPLY_TIMEOUT = 60.0


async def serve(connection: AbstractConnection, queue_name: str) -> None:
    channel = await connection.channel()
    queue = await channel.declare_queue(queue_name, auto_delete=True)

    async def answer(request: AbstractIncomingMessage) -> None:
        async with request.process():
            reply = aio_pika.Message(b"pong:" + request.body, correlation_id=request.correlation_id)
            await channel.default_exchange.publish(reply, routing_key=request.reply_to or "")

    await queue.consume(answer)
    print("ready", flush=True)
    await asyncio.Future()


async def call(connection: AbstractConnection, queue_name: str) -> None:
    """One client: its own channel and reply queue, one request, its reply."""
    channel: AbstractChannel = await connection.channel()
    try:
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        correlation_id = uuid.uuid4().hex
        request = aio_pika.Message(b"ping", correlation_id=correlation_id, reply_to=replies.name)
        await channel.default_exchange.publish(request, routing_key=queue_name)
        async with replies.iterator() as messages:
            reply = await asyncio.wait_for(messages.__anext__(), REPLY_TIMEOUT)
            await reply.ack()
        assert reply.correlation_id == correlation_id and reply.body == b"pong:ping"
    finally:
        await channel.close()


async def clients(connection: AbstractConnection, queue_name: str, count: int) -> None:
    for first in range(0, count, AT_ONCE):
        await asyncio.gather(
            *(call(connection, queue_name) for _ in range(first, min(first + AT_ONCE, count)))
        )
    print(f"done {count}", flush=True)
    await asyncio.Future()


async def main(role: str, queue_name: str, count: int) -> None:
    connection = await aio_pika.connect(os.environ["AMQP_URL"])
    async with connection:
        if role == "server":
            await serve(connection, queue_name)
        else:
            await clients(connection, queue_name, count)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0))
