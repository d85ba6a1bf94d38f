"""``queue.get()``: a CONSUMER span for the pulled message, and the work on it in the producer's trace.

The message's context becomes current in the code that called ``get()`` (see
:mod:`hoptrace.tracing._aio_pika.scope`) and stays current until the message is acked, rejected or
nacked (``async with message.process()`` does one of them), or the next ``get()`` on the same queue
starts. An empty queue (``fail=False`` returning ``None``, or ``QueueEmpty``) makes no span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import wrapt
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.message import IncomingMessage
from aio_pika.queue import Queue

from hoptrace.tracing._aio_pika.scope import MessageScopes
from hoptrace.tracing._tracer import instrumentation_failed

_scopes = MessageScopes()


def instrument_queue_get() -> None:
    """Patch ``Queue.get`` and the settlement of incoming messages (``ack``, ``reject``, ``nack``)."""
    wrapt.wrap_function_wrapper(Queue, "get", _get)
    for settle in ("ack", "reject", "nack"):
        wrapt.wrap_function_wrapper(IncomingMessage, settle, _settle)


def _get(
    wrapped: Callable[..., Awaitable[AbstractIncomingMessage | None]],
    instance: Queue,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Awaitable[AbstractIncomingMessage | None]:
    # Synchronous on purpose: it runs in the caller's context, even when a task will await the result.
    return _scopes.pull(instance, instance, "aio-pika queue.get", lambda: wrapped(*args, **kwargs))


def _settle(
    wrapped: Callable[..., Awaitable[None]],
    instance: AbstractIncomingMessage,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Awaitable[None]:
    try:
        _scopes.end_message(instance)
    except Exception as exc:
        instrumentation_failed("aio-pika message settlement", exc)
    return wrapped(*args, **kwargs)
