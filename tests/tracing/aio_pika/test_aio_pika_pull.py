"""Pulled messages (``queue.get()``, ``queue.iterator()`` under ``wait_for``/``timeout``/a task) keep the
producer's trace for the work done with them, against the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractQueueIterator
from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind

from hoptrace.processors import TENANT_KEY
from hoptrace.tracing import tenant
from tests.tracing.aio_pika.test_aio_pika import TIMEOUT, unique_name
from tests.tracing.conftest import FinishedSpans

tracer = trace.get_tracer("test")


@pytest.fixture
async def queue(channel: AbstractChannel) -> AbstractQueue:
    return await channel.declare_queue(unique_name("hoptrace-pull-"), auto_delete=True)


async def _publish(channel: AbstractChannel, queue: AbstractQueue, tenant_id: str) -> int:
    with tenant(tenant_id), tracer.start_as_current_span(f"request {tenant_id}") as parent:
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=queue.name)
    return parent.get_span_context().trace_id


def _work(name: str) -> tuple[int, object]:
    """Work done with a message: a span, and the tenant the code sees."""
    with tracer.start_as_current_span(name) as span:
        return span.get_span_context().trace_id, baggage.get_baggage(TENANT_KEY)


async def test_get_makes_a_consumer_span_and_the_work_until_ack_joins_the_producer_trace(
    spans: FinishedSpans, channel: AbstractChannel, queue: AbstractQueue
) -> None:
    trace_ids = [await _publish(channel, queue, name) for name in ("acme", "globex")]
    seen = []
    for _ in trace_ids:
        message = await queue.get(timeout=TIMEOUT)
        seen.append(_work("work before ack"))
        await message.ack()
        assert trace.get_current_span().get_span_context().trace_id == 0  # settled: context restored
    assert seen == [(trace_ids[0], "acme"), (trace_ids[1], "globex")]
    consumers = [span for span in spans.all() if span.kind is SpanKind.CONSUMER]
    assert [span.name for span in consumers] == [f"process {queue.name}"] * 2
    assert [span.context.trace_id for span in consumers] == trace_ids
    for work in [span for span in spans.all() if span.name == "work before ack"]:
        assert work.parent is not None and work.parent.span_id in {span.context.span_id for span in consumers}


async def test_get_scope_ends_at_the_next_get_and_an_empty_queue_makes_no_span(
    spans: FinishedSpans, channel: AbstractChannel, queue: AbstractQueue
) -> None:
    trace_id = await _publish(channel, queue, "acme")
    async with (await queue.get(timeout=TIMEOUT)).process():  # process() acks at its end
        assert _work("inside process()") == (trace_id, "acme")
    assert await queue.get(fail=False, timeout=TIMEOUT) is None
    consumer = spans.named(f"process {queue.name}")
    assert consumer.end_time is not None and consumer.context.trace_id == trace_id
    assert len([span for span in spans.all() if span.kind is SpanKind.CONSUMER]) == 1


async def test_interleaved_gets_on_two_queues_each_keep_their_trace_and_restore_the_context(
    spans: FinishedSpans, channel: AbstractChannel, queue: AbstractQueue
) -> None:
    other = await channel.declare_queue(unique_name("hoptrace-pull-"), auto_delete=True)
    first, second = await _publish(channel, queue, "acme"), await _publish(channel, other, "globex")
    a = await queue.get(timeout=TIMEOUT)
    assert _work("a") == (first, "acme")
    b = await other.get(timeout=TIMEOUT)
    assert _work("b") == (second, "globex")
    await a.ack()  # settled out of order: b's work still in b's trace
    assert _work("b after a") == (second, "globex")
    await b.ack()
    assert trace.get_current_span().get_span_context().trace_id == 0
    assert [span.context.trace_id for span in spans.all() if span.kind is SpanKind.CONSUMER] == [
        first,
        second,
    ]


Pull = Callable[[AbstractQueueIterator], Awaitable[AbstractIncomingMessage]]


async def _through_wait_for(messages: AbstractQueueIterator) -> AbstractIncomingMessage:
    return await asyncio.wait_for(messages.__anext__(), TIMEOUT)


async def _through_timeout(messages: AbstractQueueIterator) -> AbstractIncomingMessage:
    async with asyncio.timeout(TIMEOUT):
        return await messages.__anext__()


async def _through_a_task(messages: AbstractQueueIterator) -> AbstractIncomingMessage:
    return await asyncio.create_task(messages.__anext__())


@pytest.mark.parametrize("pull", [_through_wait_for, _through_timeout, _through_a_task])
async def test_iterator_message_pulled_through_wait_for_timeout_or_a_task_keeps_the_producer_trace(
    spans: FinishedSpans, channel: AbstractChannel, queue: AbstractQueue, pull: Pull
) -> None:
    trace_ids = [await _publish(channel, queue, name) for name in ("acme", "globex")]
    seen = []
    async with queue.iterator() as messages:
        for _ in trace_ids:
            message = await pull(messages)
            seen.append(_work("loop body"))
            await message.ack()
        with pytest.raises(TimeoutError):  # an empty wait leaves no span open and no context behind
            await asyncio.wait_for(messages.__anext__(), 0.2)
    assert seen == [(trace_ids[0], "acme"), (trace_ids[1], "globex")]
    consumers = [span for span in spans.all() if span.kind is SpanKind.CONSUMER]
    assert [span.context.trace_id for span in consumers] == trace_ids
    assert all(span.end_time is not None for span in consumers)
    assert trace.get_current_span().get_span_context().trace_id == 0
