"""The consumer's work on a pulled message runs in the producer's trace, whichever task pulled it.

``queue.iterator()`` and ``queue.get()`` hand a message to the code that *asked* for it, which goes on
working with it after the call returns. That code runs in the task that called ``__anext__()`` /
``get()``, which is not always the task that runs the call: ``asyncio.wait_for`` (Python 3.11) and
``asyncio.create_task`` run it in a task of their own, whose context changes never reach the caller.

So the pull is traced in two steps. :meth:`MessageScopes.open`, called synchronously when the caller
creates the pull (``it.__anext__()``, ``queue.get()``), attaches a *pending* OpenTelemetry context in
the caller's own context: a private ``Context`` object, at first a copy of the caller's current one.
:meth:`MessageScope.fill`, run by the pull once the message arrives (in whatever task), starts the
CONSUMER span and rewrites that object in place to the message's context (span and baggage). The caller
then finds the producer's trace current, with no new task semantics. The scope ends (span ended, context
detached in the caller) at the owner's next pull, its close, or the message's settlement, depending on
the owner.

``Context`` is an immutable mapping by contract; this module alone mutates the pending one, once, before
any code but the caller can have read it, through ``dict`` methods.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from opentelemetry import context, trace
from opentelemetry.trace import Span

from hoptrace.tracing._aio_pika.spans import record_failure, start_consumer_span
from hoptrace.tracing._tracer import instrumentation_failed, instrumentation_suppressed


class MessageScope:
    """One pull's pending context in its caller, and the CONSUMER span once its message arrived."""

    __slots__ = ("message", "original", "pending", "span", "task", "token")

    def __init__(self) -> None:
        self.original = context.get_current()
        self.pending = context.Context(self.original)
        self.token: object = context.attach(self.pending)
        self.task = _task()
        self.span: Span | None = None
        self.message: AbstractIncomingMessage | None = None

    def fill(self, message: AbstractIncomingMessage, queue: AbstractQueue, where: str) -> None:
        """Start ``message``'s CONSUMER span and make its context the caller's. Never raises."""
        try:
            span, parent = start_consumer_span(message, queue)
        except Exception as exc:
            instrumentation_failed(where, exc)
            return
        self.span, self.message = span, message
        dict.clear(self.pending)
        dict.update(self.pending, trace.set_span_in_context(span, parent))

    def end(self, exc: BaseException | None = None) -> None:
        """End the span (recording ``exc``) and detach the pending context if still in the caller's task."""
        if self.span is not None:
            if exc is not None:
                record_failure(self.span, exc)
            self.span.end()
            self.span = None
        if self.token is None:
            return
        # A token can only be reset in the context that set it, and only in order: otherwise the pending
        # context goes back to what the caller had, wherever it still is current.
        if self.task is _task() and context.get_current() is self.pending:
            context.detach(self.token)  # type: ignore[arg-type]
        else:
            dict.clear(self.pending)
            dict.update(self.pending, self.original)
        self.token = None


class MessageScopes:
    """The open scope of each owner (a queue iterator, a queue), at most one per owner. Not thread-safe:
    an event loop's tasks use it, one at a time."""

    def __init__(self) -> None:
        self._by_owner: weakref.WeakKeyDictionary[Any, MessageScope] = weakref.WeakKeyDictionary()
        self._by_message: dict[int, MessageScope] = {}

    def open(self, owner: object) -> MessageScope:
        """End ``owner``'s previous scope and open a new one in the current (caller's) context."""
        self.end(owner)
        scope = self._by_owner[owner] = MessageScope()
        return scope

    def pull(
        self,
        owner: object,
        queue: AbstractQueue,
        where: str,
        start: Callable[[], Awaitable[AbstractIncomingMessage | None]],
    ) -> Awaitable[AbstractIncomingMessage | None]:
        """Open ``owner``'s scope in the caller's context, then ``start()`` the pull (``wrapped(...)``).

        Call it synchronously from the patched method, so that it runs in the caller's context even
        when a task will await the result; the returned awaitable fills the scope with the message."""
        if instrumentation_suppressed():
            return start()
        try:
            scope = self.open(owner)
        except Exception as exc:
            instrumentation_failed(where, exc)
            return start()
        return self._receive(owner, scope, start(), queue, where)

    async def _receive(
        self,
        owner: object,
        scope: MessageScope,
        pull: Awaitable[AbstractIncomingMessage | None],
        queue: AbstractQueue,
        where: str,
    ) -> AbstractIncomingMessage | None:
        try:
            message = await pull
        except BaseException:  # no message (closed, timed out, cancelled): nothing to keep current
            if self._by_owner.get(owner) is scope:
                self.end(owner)
            raise
        if message is not None:
            scope.fill(message, queue, where)
            if scope.message is not None:  # settling it (ack, reject, nack) can end the scope
                self._by_message[id(message)] = scope
        return message

    def end(self, owner: object, exc: BaseException | None = None) -> None:
        """End ``owner``'s open scope, if any."""
        scope = self._by_owner.pop(owner, None)
        if scope is not None:
            self._forget(scope)
            scope.end(exc)

    def end_message(self, message: AbstractIncomingMessage) -> None:
        """End the scope of ``message`` (it was acked, rejected or nacked), if it has one."""
        scope = self._by_message.get(id(message))
        if scope is not None and scope.message is message:
            self._forget(scope)
            scope.end()

    def _forget(self, scope: MessageScope) -> None:
        if scope.message is not None and self._by_message.get(id(scope.message)) is scope:
            del self._by_message[id(scope.message)]


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
