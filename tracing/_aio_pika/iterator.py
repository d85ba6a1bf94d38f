"""``queue.iterator()`` consumers: the work on each message belongs to the producer's trace.

Upstream traces the iterator's internal buffering callback, so the span ends before the loop body runs and
the body starts a new trace (opentelemetry-python-contrib #1993, #2892). Here each ``__anext__()`` opens a
:class:`~hoptrace.tracing._aio_pika.scope.MessageScope` in the code that asked for the message, so the
body (and ``async with message.process()``) runs inside the message's CONSUMER span, also when the call is
wrapped in ``asyncio.wait_for``, ``asyncio.timeout`` or a task. The span ends when the loop asks for the
next message, or when the iterator closes or its ``async with`` exits (recording an exception that escapes
the body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import wrapt
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.queue import QueueIterator
from aio_pika.robust_queue import RobustQueueIterator

from hoptrace.tracing._aio_pika.scope import MessageScopes

_scopes = MessageScopes()


def instrument_queue_iterators() -> None:
    """Patch ``QueueIterator`` and ``RobustQueueIterator`` (which overrides ``__anext__``)."""
    for iterator_class in (QueueIterator, RobustQueueIterator):
        wrapt.wrap_function_wrapper(iterator_class, "__anext__", _anext)
    wrapt.wrap_function_wrapper(QueueIterator, "close", _close)
    wrapt.wrap_function_wrapper(QueueIterator, "__aexit__", _aexit)


def _anext(
    wrapped: Callable[..., Awaitable[AbstractIncomingMessage | None]],
    instance: QueueIterator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Awaitable[AbstractIncomingMessage | None]:
    # Synchronous on purpose: it runs in the caller's context, even when a task will await the result.
    queue = instance._amqp_queue
    return _scopes.pull(instance, queue, "aio-pika queue iterator", lambda: wrapped(*args, **kwargs))


async def _close(
    wrapped: Callable[[], Awaitable[None]],
    instance: QueueIterator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    _scopes.end(instance)
    await wrapped(*args, **kwargs)


async def _aexit(
    wrapped: Callable[..., Awaitable[None]],
    instance: QueueIterator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    exc = args[1] if len(args) > 1 else kwargs.get("exc_val")
    _scopes.end(instance, exc if isinstance(exc, BaseException) else None)
    await wrapped(*args, **kwargs)
