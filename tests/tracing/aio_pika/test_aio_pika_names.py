"""Bounded messaging span names: server-named and per-run destinations, against the real broker."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from opentelemetry.trace import SpanKind

from tests.tracing.aio_pika.test_aio_pika import TIMEOUT
from tests.tracing.conftest import FinishedSpans


async def test_server_named_reply_queue_is_anonymous_in_span_names(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    replies = await channel.declare_queue(exclusive=True)
    # The broker names it amq.gen-...; on a robust channel, aio-pika names it amq_<uuid hex> itself.
    assert replies.name.startswith(("amq.gen-", "amq_"))
    await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=replies.name)
    message = await replies.get(timeout=TIMEOUT)
    await message.ack()
    producer = spans.named("publish (anonymous)")
    consumer = spans.named("process (anonymous)")
    for span, kind in ((producer, SpanKind.PRODUCER), (consumer, SpanKind.CONSUMER)):
        assert span.kind is kind
        assert span.attributes is not None
        assert span.attributes["messaging.destination.name"] == replies.name
        assert span.attributes["messaging.destination.anonymous"] is True
    assert consumer.attributes["messaging.destination.temporary"] is True  # exclusive


async def test_names_with_per_run_ids_are_folded_into_a_template(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    run_id = uuid.uuid4()
    queue = await channel.declare_queue(f"rpc_{run_id.hex}.replies", auto_delete=True)
    received = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        await message.ack()
        received.set()

    await queue.consume(on_message)
    await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=queue.name)
    await asyncio.wait_for(received.wait(), TIMEOUT)
    consumer = spans.named("process rpc_{id}.replies")
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.destination.name"] == queue.name
    assert consumer.attributes["messaging.destination.template"] == "rpc_{id}.replies"
    assert consumer.attributes["messaging.destination.temporary"] is True  # auto-delete
    assert "messaging.destination.anonymous" not in consumer.attributes
    producer = spans.named("publish rpc_{id}.replies")
    assert "messaging.destination.temporary" not in (producer.attributes or {})  # unknown to a publisher


async def test_static_names_are_kept(spans: FinishedSpans, channel: AbstractChannel) -> None:
    exchange = await channel.declare_exchange("hoptrace.orders.created", auto_delete=True)
    await exchange.publish(aio_pika.Message(b"{}"), routing_key="orders")
    producer = spans.named("publish hoptrace.orders.created")
    assert producer.attributes is not None
    assert "messaging.destination.template" not in producer.attributes
