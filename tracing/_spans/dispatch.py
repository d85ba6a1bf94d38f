"""The tracer provider's span processor: each registered processor's hooks, minus those that do nothing.

The SDK's ``SynchronousMultiSpanProcessor`` calls ``on_start``, ``_on_ending`` and ``on_end`` of every
processor for every span. Most of those calls do nothing: hoptrace's chain has six processors and, per span,
only three hooks that do any work (the tenant at start, RED metrics and redaction-then-batch at end); the
rest are ``SpanProcessor``'s empty defaults or the batch processor's ``pass`` bodies, each call ~0.1 µs.
:class:`SpanProcessorDispatch` works out, when a processor is added, which of its hooks have a body, and
calls only those, in registration order. The list is rebuilt on every ``add_span_processor``, so users'
processors plug in as before; ``shutdown`` and ``force_flush`` reach every processor, as the SDK's do.
"""

from __future__ import annotations

import dis
import functools
import threading
from collections.abc import Callable
from types import CodeType
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, SynchronousMultiSpanProcessor

from hoptrace.processors import RedactionSpanProcessor

_HOOKS = ("on_start", "_on_ending", "on_end")


class SpanProcessorDispatch(SynchronousMultiSpanProcessor):
    """A ``SynchronousMultiSpanProcessor`` (pass it as ``TracerProvider(active_span_processor=...)``) that
    skips hooks that do nothing. Same order, same arguments, same thread; adding a processor is
    thread-safe and takes effect for the next span."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._registered: tuple[SpanProcessor, ...] = ()
        self._dispatch_lock = threading.Lock()
        self._starts: tuple[Callable[..., None], ...] = ()
        self._endings: tuple[Callable[[Span], None], ...] = ()
        self._ends: tuple[Callable[[ReadableSpan], None], ...] = ()

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)  # the SDK's own list: shutdown and force_flush
        with self._dispatch_lock:
            self._registered += (span_processor,)
            starts, endings, ends = (
                [hook for p in self._registered if (hook := _working(p, name))] for name in _HOOKS
            )
            self._starts, self._endings, self._ends = tuple(starts), tuple(endings), tuple(ends)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for on_start in self._starts:
            on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        for on_ending in self._endings:
            on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        for on_end in self._ends:
            on_end(span)


def _working(processor: SpanProcessor, name: str) -> Callable[..., Any] | None:
    """``processor``'s bound hook ``name``, or ``None`` when calling it would do nothing."""
    hook = getattr(processor, name, None)
    if hook is None:
        return None
    function = getattr(hook, "__func__", None)
    if function is None:  # a callable set on the instance: assume it works
        return hook  # type: ignore[no-any-return]
    if _does_nothing(function):
        return None
    if isinstance(processor, RedactionSpanProcessor) and name == "on_start":
        # It forwards on_start to the processor it wraps (its documented contract).
        return hook if _working(processor.downstream, name) is not None else None
    return hook  # type: ignore[no-any-return]


# A body that only returns None compiles to 4-6 bytes (RESUME, then RETURN_CONST or LOAD_CONST and
# RETURN_VALUE). Longer bytecode does something: it is not disassembled (the bootstrap builds this dispatch
# at start-up, where dis on the batch processor's hooks cost milliseconds). A padded no-op over this size
# would merely be called, which is always correct.
_MAX_EMPTY_BODY_BYTES = 16


def _does_nothing(function: Any) -> bool:
    """Whether ``function``'s body only returns ``None`` (``pass``, ``...`` or a docstring)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    return len(code.co_code) <= _MAX_EMPTY_BODY_BYTES and _code_does_nothing(code)


@functools.cache  # one disassembly per function: add_span_processor looks at every hook again
def _code_does_nothing(code: CodeType) -> bool:
    try:
        steps = [step for step in dis.get_instructions(code) if step.opname not in ("RESUME", "NOP", "CACHE")]
    except Exception:
        return False
    if len(steps) == 1:
        return steps[0].opname == "RETURN_CONST" and steps[0].argval is None
    return (
        len(steps) == 2
        and steps[0].opname == "LOAD_CONST"
        and steps[0].argval is None
        and steps[1].opname == "RETURN_VALUE"
    )
