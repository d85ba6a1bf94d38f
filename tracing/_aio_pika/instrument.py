"""aio-pika hops: PRODUCER spans on publish, CONSUMER spans around callback consumers; the instrumentor.

hoptrace ships its own instrumentation rather than upstream's because upstream (contrib 0.66b1) names
producer spans ``",orders send"`` with pre-stable messaging attributes, and loses the trace in
``queue.iterator()`` consumers (issues #1993, #2892; fixed in :mod:`hoptrace.tracing._aio_pika.iterator`).
Span names
and attributes follow the current messaging semantic conventions: ``publish orders``, ``process orders``,
with bounded names for temporary queues (one span builder for every path:
:mod:`hoptrace.tracing._aio_pika.spans`). ``queue.get()`` is traced in :mod:`hoptrace.tracing._aio_pika.get`.

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

from hoptrace.tracing._aio_pika.spans import record_failure, start_consumer_span, start_producer_span
from hoptrace.tracing._span_scope import CurrentSpan
from hoptrace.tracing._tracer import instrumentation_failed, instrumentation_suppressed

Callback = Callable[[AbstractIncomingMessage], Awaitable[Any]]


def instrument_aio_pika() -> None:
    """Patch publishing, callback consumers, queue iterators and ``queue.get()``. Idempotent."""
    if getattr(Exchange, "_hoptrace_patched", False):
        return
    from hoptrace.tracing._aio_pika.get import instrument_queue_get
    from hoptrace.tracing._aio_pika.iterator import instrument_queue_iterators

    wrapt.wrap_function_wrapper(Exchange, "publish", _publish)
    wrapt.wrap_function_wrapper(Queue, "consume", _consume)
    instrument_queue_iterators()
    instrument_queue_get()
    Exchange._hoptrace_patched = True  # type: ignore[attr-defined]


async def _publish(
    wrapped: Callable[..., Awaitable[Any]], instance: Exchange, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    message: AbstractMessage = args[0] if args else kwargs["message"]
    routing_key: str = args[1] if len(args) > 1 else kwargs["routing_key"]
    if instrumentation_suppressed():
        return await wrapped(*args, **kwargs)
    try:
        span = start_producer_span(instance.name, message, routing_key)
    except Exception as exc:
        instrumentation_failed("aio-pika publish", exc)
        return await wrapped(*args, **kwargs)
    with CurrentSpan(span):
        return await wrapped(*args, **kwargs)


async def _consume(
    wrapped: Callable[..., Awaitable[Any]], instance: Queue, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if args:
        args = (_traced_callback(args[0], instance), *args[1:])
    elif "callback" in kwargs:
        kwargs["callback"] = _traced_callback(kwargs["callback"], instance)
    return await wrapped(*args, **kwargs)


def _traced_callback(callback: Callback, queue: Queue) -> Callback:
    # A queue iterator consumes through its own callback, which only buffers the message: its trace is
    # handled where the loop body runs (hoptrace.tracing._aio_pika.iterator), so it is left alone here.
    if isinstance(getattr(callback, "__self__", None), QueueIterator):
        return callback

    async def traced(message: AbstractIncomingMessage) -> Any:
        if instrumentation_suppressed():
            return await callback(message)
        try:
            span, parent = start_consumer_span(message, queue)
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
