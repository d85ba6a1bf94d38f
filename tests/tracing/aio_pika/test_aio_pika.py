"""aio-pika hops against the real broker: publish -> consume keeps one trace and the tenant.

Covers the default and named exchanges, callback consumers and ``queue.iterator()`` consumers (plain and
robust connections), messages without headers and redelivered messages.
"""

from __future__ import annotations

import asyncio
import random
import string

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from hoptrace.processors import TENANT_KEY
from hoptrace.tracing import tenant
from tests.tracing.conftest import FinishedSpans

TIMEOUT = 20.0


def unique_name(prefix: str) -> str:
    """A fresh name without id-like parts: span names keep it as it is (names with ids are folded)."""
    return prefix + "".join(random.choices(string.ascii_lowercase, k=16))


async def _queue(channel: AbstractChannel) -> AbstractQueue:
    return await channel.declare_queue(unique_name("hoptrace-test-"), auto_delete=True)


class Observed:
    """What the consumer's code saw while it processed one message."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.span_ids: list[int] = []
        self.trace_ids: list[int] = []
        self.tenants: list[object] = []

    @classmethod
    async def consuming(cls, queue: AbstractQueue) -> Observed:
        """Consume ``queue`` with a callback that records what it sees inside ``message.process()``."""
        observed = cls()

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process():
                observed.record()
                observed.done.set()

        await queue.consume(on_message)
        return observed

    def record(self) -> None:
        context = trace.get_current_span().get_span_context()
        self.span_ids.append(context.span_id)
        self.trace_ids.append(context.trace_id)
        self.tenants.append(baggage.get_baggage(TENANT_KEY))


async def _publish_in_trace(channel: AbstractChannel, routing_key: str) -> ReadableSpan | trace.Span:
    with tenant("acme"), trace.get_tracer("test").start_as_current_span("request") as parent:
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key)
    return parent


def _one(spans: FinishedSpans, kind: SpanKind) -> ReadableSpan:
    (span,) = [span for span in spans.all() if span.kind is kind]
    return span


async def test_publish_span_follows_messaging_semconv(spans: FinishedSpans, channel: AbstractChannel) -> None:
    queue = await _queue(channel)
    await channel.default_exchange.publish(aio_pika.Message(b"{}", message_id="m-1"), routing_key=queue.name)
    producer = spans.named(f"publish {queue.name}")
    assert producer.kind is SpanKind.PRODUCER
    assert producer.attributes is not None
    assert producer.attributes["messaging.system"] == "rabbitmq"
    assert producer.attributes["messaging.operation.type"] == "send"
    assert producer.attributes["messaging.destination.name"] == queue.name
    assert producer.attributes["messaging.message.id"] == "m-1"
    message = await queue.get(timeout=TIMEOUT)
    assert message.headers["traceparent"]


async def test_publish_through_a_named_exchange_is_named_after_it(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    exchange = await channel.declare_exchange(unique_name("hoptrace-orders-"), auto_delete=True)
    await exchange.publish(aio_pika.Message(b"{}"), routing_key="orders.created")
    producer = spans.named(f"publish {exchange.name}")
    assert producer.attributes["messaging.rabbitmq.destination.routing_key"] == "orders.created"  # type: ignore[index]


async def test_callback_consumer_continues_producer_trace_with_tenant(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    queue = await _queue(channel)
    observed = await Observed.consuming(queue)
    parent = await _publish_in_trace(channel, queue.name)
    await asyncio.wait_for(observed.done.wait(), TIMEOUT)
    consumer = spans.named(f"process {queue.name}")
    producer = spans.named(f"publish {queue.name}")
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert observed.trace_ids == [parent.get_span_context().trace_id]
    assert observed.span_ids == [consumer.context.span_id]
    assert observed.tenants == ["acme"]
    assert consumer.attributes[TENANT_KEY] == "acme"  # type: ignore[index]


async def test_iterator_consumer_continues_producer_trace(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    queue = await _queue(channel)
    parent = await _publish_in_trace(channel, queue.name)
    observed = Observed()

    async def consume_one() -> None:
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    observed.record()
                    with trace.get_tracer("test").start_as_current_span("work in loop body"):
                        pass
                break

    await asyncio.wait_for(consume_one(), TIMEOUT)
    consumer = spans.named(f"process {queue.name}")
    work = spans.named("work in loop body")
    assert consumer.context.trace_id == parent.get_span_context().trace_id
    assert observed.span_ids == [consumer.context.span_id]
    assert work.parent is not None and work.parent.span_id == consumer.context.span_id
    assert observed.tenants == ["acme"]
    assert work.attributes[TENANT_KEY] == "acme"  # type: ignore[index]
    # Leaving the loop restores the consumer task's own context.
    assert trace.get_current_span().get_span_context().trace_id == 0


async def test_iterator_spans_end_per_message_and_body_errors_are_recorded(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    queue = await _queue(channel)
    for _ in range(2):
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=queue.name)
    seen: list[int] = []

    async def consume_two() -> None:
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                seen.append(trace.get_current_span().get_span_context().trace_id)
                if len(seen) == 2:
                    raise ValueError("bad order")

    with pytest.raises(ValueError, match="bad order"):
        await asyncio.wait_for(consume_two(), TIMEOUT)
    first, second = sorted(
        (span for span in spans.all() if span.kind is SpanKind.CONSUMER),
        key=lambda span: span.start_time or 0,
    )
    assert first.end_time is not None and second.start_time is not None
    assert first.end_time <= second.start_time
    assert first.status.is_ok and not second.status.is_ok
    assert len(set(seen)) == 2  # each message continues its own producer's trace


async def test_message_without_headers_starts_a_new_trace(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    queue = await _queue(channel)
    # Published through aiormq directly, as a non-hoptrace producer would: no headers at all.
    underlay = await channel.get_underlay_channel()
    await underlay.basic_publish(b"{}", routing_key=queue.name)
    observed = await Observed.consuming(queue)
    await asyncio.wait_for(observed.done.wait(), TIMEOUT)
    consumer = spans.named(f"process {queue.name}")
    assert consumer.parent is None
    assert observed.span_ids == [consumer.context.span_id]
    assert observed.tenants == [None]


async def test_iterator_message_without_headers_is_not_parented_to_the_consuming_task(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    queue = await _queue(channel)
    underlay = await channel.get_underlay_channel()
    await underlay.basic_publish(b"{}", routing_key=queue.name)

    async def consume_one() -> None:
        with trace.get_tracer("test").start_as_current_span("consumer loop"):
            async with queue.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    break

    await asyncio.wait_for(consume_one(), TIMEOUT)
    consumer = spans.named(f"process {queue.name}")
    assert consumer.parent is None
    assert consumer.context.trace_id != spans.named("consumer loop").context.trace_id


async def test_redelivered_message_is_traced_in_the_producer_trace(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    queue = await _queue(channel)
    observed = Observed()

    async def on_message(message: AbstractIncomingMessage) -> None:
        if not message.redelivered:
            await message.reject(requeue=True)
            return
        await message.ack()
        observed.done.set()

    await queue.consume(on_message)
    parent = await _publish_in_trace(channel, queue.name)
    await asyncio.wait_for(observed.done.wait(), TIMEOUT)
    deliveries = [span for span in spans.all() if span.kind is SpanKind.CONSUMER]
    assert len(deliveries) == 2
    assert {span.context.trace_id for span in deliveries} == {parent.get_span_context().trace_id}
    assert sorted(
        bool((span.attributes or {}).get("hoptrace.messaging.redelivered")) for span in deliveries
    ) == [
        False,
        True,
    ]


async def test_failed_publish_ends_its_span_as_an_error(
    spans: FinishedSpans, channel: AbstractChannel
) -> None:
    queue = await _queue(channel)
    exchange = channel.default_exchange
    await channel.close()
    with pytest.raises(Exception) as raised:
        await exchange.publish(aio_pika.Message(b"{}"), routing_key=queue.name)
    span = _one(spans, SpanKind.PRODUCER)
    assert span.name == f"publish {queue.name}"
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.status.description == f"{type(raised.value).__name__}: {raised.value}"
    assert [event.name for event in span.events] == ["exception"]
    assert trace.get_current_span() is trace.INVALID_SPAN
