"""aio-pika hops: PRODUCER spans on publish, CONSUMER spans around callback consumers.

hoptrace ships its own instrumentation rather than upstream's because upstream (contrib 0.66b1) names
producer spans ``",orders send"`` with pre-stable messaging attributes, and loses the trace in
``queue.iterator()`` consumers (issues #1993, #2892; fixed in :mod:`hoptrace.tracing._aio_pika_iterator`).
Span names
and attributes follow the current messaging semantic conventions: ``publish orders``, ``process orders``.

Consumers extract, attach and end in a ``finally``; producers inject *inside* their span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import wrapt
from aio_pika.abc import AbstractIncomingMessage, AbstractMessage
from aio_pika.exchange import Exchange
from aio_pika.queue import Queue, QueueIterator
from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from hoptrace.tracing._propagation import extract, inject
from hoptrace.tracing._tracer import hop_tracer, instrumentation_failed, instrumentation_suppressed

Callback = Callable[[AbstractIncomingMessage], Awaitable[Any]]


def instrument_aio_pika() -> None:
    """Patch publishing, callback consumers and queue iterators. Idempotent."""
    if getattr(Exchange, "_hoptrace_patched", False):
        return
    from hoptrace.tracing._aio_pika_iterator import instrument_queue_iterators

    wrapt.wrap_function_wrapper(Exchange, "publish", _publish)
    wrapt.wrap_function_wrapper(Queue, "consume", _consume)
    instrument_queue_iterators()
    Exchange._hoptrace_patched = True  # type: ignore[attr-defined]


async def _publish(
    wrapped: Callable[..., Awaitable[Any]], instance: Exchange, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    message: AbstractMessage = args[0] if args else kwargs["message"]
    routing_key: str = args[1] if len(args) > 1 else kwargs["routing_key"]
    if instrumentation_suppressed():
        return await wrapped(*args, **kwargs)
    try:
        span = _start_producer_span(instance, message, routing_key)
    except Exception as exc:
        instrumentation_failed("aio-pika publish", exc)
        return await wrapped(*args, **kwargs)
    with trace.use_span(span, end_on_exit=True):
        return await wrapped(*args, **kwargs)


def _start_producer_span(exchange: Exchange, message: AbstractMessage, routing_key: str) -> Span:
    # The default exchange ("") routes to the queue named by the routing key: that queue is the destination.
    destination = exchange.name or routing_key
    attributes = _message_attributes(message, "publish", "send", destination)
    attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
    span = hop_tracer().start_span(f"publish {destination}", kind=SpanKind.PRODUCER, attributes=attributes)
    if message.headers is None:
        message.headers = {}
    inject(message.headers, trace.set_span_in_context(span))  # type: ignore[arg-type]  # AMQP tables take str
    return span


async def _consume(
    wrapped: Callable[..., Awaitable[Any]], instance: Queue, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if args:
        args = (_traced_callback(args[0], instance.name), *args[1:])
    elif "callback" in kwargs:
        kwargs["callback"] = _traced_callback(kwargs["callback"], instance.name)
    return await wrapped(*args, **kwargs)


def _traced_callback(callback: Callback, queue_name: str) -> Callback:
    # A queue iterator consumes through its own callback, which only buffers the message: its trace is
    # handled where the loop body runs (hoptrace.tracing._aio_pika_iterator), so it is left alone here.
    if isinstance(getattr(callback, "__self__", None), QueueIterator):
        return callback

    async def traced(message: AbstractIncomingMessage) -> Any:
        if instrumentation_suppressed():
            return await callback(message)
        try:
            span, parent = start_consumer_span(message, queue_name)
        except Exception as exc:
            instrumentation_failed("aio-pika consume", exc)
            return await callback(message)
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            return await callback(message)
        except BaseException as exc:
            record_failure(span, exc)
            raise
        finally:
            span.end()
            context.detach(token)

    return traced


def start_consumer_span(message: AbstractIncomingMessage, queue_name: str) -> tuple[Span, context.Context]:
    """Start the CONSUMER span of ``message`` as a child of the producer's context carried in its headers.

    Returns the span and the extracted parent context (which carries the baggage). A message without
    headers, or with malformed ones, starts a new trace. Never raises for a well-formed aio-pika message.
    """
    # Extracted into an empty context: whatever span the consuming task happens to run in is not the
    # message's parent, so a message without headers starts a new trace.
    parent = extract(message.headers or {}, context.Context())
    attributes = _message_attributes(message, "process", "process", queue_name)
    if message.routing_key is not None:
        attributes["messaging.rabbitmq.destination.routing_key"] = message.routing_key
    if message.delivery_tag is not None:
        attributes["messaging.rabbitmq.message.delivery_tag"] = message.delivery_tag
    if message.redelivered:
        attributes["hoptrace.messaging.redelivered"] = True
    span = hop_tracer().start_span(
        f"process {queue_name}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    )
    return span, parent


def record_failure(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``."""
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))


def _message_attributes(
    message: AbstractMessage, operation: str, operation_type: str, destination: str
) -> dict[str, str | int | bool]:
    attributes: dict[str, str | int | bool] = {
        "messaging.system": "rabbitmq",
        "messaging.operation.name": operation,
        "messaging.operation.type": operation_type,
        "messaging.destination.name": destination,
    }
    if message.message_id:
        attributes["messaging.message.id"] = message.message_id
    if message.correlation_id:
        attributes["messaging.message.conversation_id"] = message.correlation_id
    if isinstance(message.body, bytes):
        attributes["messaging.message.body.size"] = len(message.body)
    return attributes
