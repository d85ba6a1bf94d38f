"""The RabbitMQ launcher: a broker answering at AMQP_URL is used; otherwise a private one is started."""

from __future__ import annotations

import asyncio
import os

import aio_pika
import pytest

from hoptrace.harness.launch._rabbitmq import DEFAULT_AMQP_URL, amqp_answers, start_rabbitmq


async def _round_trip(url: str, queue_name: str) -> bytes:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, auto_delete=True)
        await channel.default_exchange.publish(aio_pika.Message(b"ping"), routing_key=queue_name)
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    return message.body
    raise AssertionError("no message")


def test_answering_broker_is_used_as_it_is() -> None:
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    assert amqp_answers(url), "the project's set-up starts a broker at AMQP_URL"
    with start_rabbitmq() as broker:
        assert (broker.url, broker.how) == (url, "AMQP_URL")
        assert asyncio.run(_round_trip(broker.url, broker.unique_name("launcher"))) == b"ping"


def test_private_broker_starts_when_amqp_url_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://guest:guest@127.0.0.1:9/")
    broker = start_rabbitmq(timeout=90)
    try:
        assert broker.how == "rabbitmq-server"
        assert broker.url != "amqp://guest:guest@127.0.0.1:9/"
        assert asyncio.run(_round_trip(broker.url, broker.unique_name("private"))) == b"ping"
    finally:
        broker.stop()
    assert not amqp_answers(broker.url)


def test_non_amqp_listener_does_not_count_as_a_broker() -> None:
    assert not amqp_answers("amqp://guest:guest@127.0.0.1:9/")
