"""``queue.iterator()`` consumers: the loop body of each message belongs to the producer's trace.

Upstream traces the iterator's internal buffering callback, so the span ends before the loop body runs and
the body starts a new trace (opentelemetry-python-contrib #1993, #2892). Here ``__anext__`` itself starts
the message's CONSUMER span and makes it current in the consuming task: ``async for`` awaits ``__anext__``
in that task, so the body (and ``async with message.process()``) runs inside the span. The span ends when
the loop asks for the next message, or when the iterator closes or its ``async with`` exits (recording an
exception that escapes the body).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import wrapt
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.queue import QueueIterator
from aio_pika.robust_queue import RobustQueueIterator
from opentelemetry import context, trace

from hoptrace.tracing._aio_pika import record_failure, start_consumer_span
from hoptrace.tracing._tracer import instrumentation_failed


@dataclass
class _Current:
    span: trace.Span
    token: object
    task: asyncio.Task[Any] | None


_current: weakref.WeakKeyDictionary[QueueIterator, _Current] = weakref.WeakKeyDictionary()


def instrument_queue_iterators() -> None:
    """Patch ``QueueIterator`` and ``RobustQueueIterator`` (which overrides ``__anext__``)."""
    for iterator_class in (QueueIterator, RobustQueueIterator):
        wrapt.wrap_function_wrapper(iterator_class, "__anext__", _anext)
    wrapt.wrap_function_wrapper(QueueIterator, "close", _close)
    wrapt.wrap_function_wrapper(QueueIterator, "__aexit__", _aexit)


async def _anext(
    wrapped: Callable[[], Awaitable[AbstractIncomingMessage]],
    instance: QueueIterator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> AbstractIncomingMessage:
    _finish(instance)
    message = await wrapped(*args, **kwargs)
    try:
        span, parent = start_consumer_span(message, instance._amqp_queue.name)
    except Exception as exc:
        instrumentation_failed("aio-pika queue iterator", exc)
        return message
    token = context.attach(trace.set_span_in_context(span, parent))
    _current[instance] = _Current(span, token, _task())
    return message


async def _close(
    wrapped: Callable[[], Awaitable[None]],
    instance: QueueIterator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    _finish(instance)
    await wrapped(*args, **kwargs)


async def _aexit(
    wrapped: Callable[..., Awaitable[None]],
    instance: QueueIterator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    exc = args[1] if len(args) > 1 else kwargs.get("exc_val")
    current = _current.get(instance)
    if current is not None and isinstance(exc, BaseException):
        record_failure(current.span, exc)
    _finish(instance)
    await wrapped(*args, **kwargs)


def _finish(instance: QueueIterator) -> None:
    current = _current.pop(instance, None)
    if current is None:
        return
    current.span.end()
    # A context token can only be reset in the task that set it; elsewhere the span just ends.
    if current.task is _task():
        context.detach(current.token)  # type: ignore[arg-type]


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
