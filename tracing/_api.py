"""The manual API: the tenant scope, spans as context manager or decorator (sync and async)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, overload

from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind

from hoptrace.processors import TENANT_KEY, validate_tenant

P = ParamSpec("P")
R = TypeVar("R")

AttributeValue = str | bool | int | float
_TRACER_NAME = "hoptrace.manual"


@contextmanager
def tenant(value: str) -> Iterator[str | None]:
    """Run the block with ``value`` as the tenant (``tenant.id`` baggage, so it propagates on every hop).

    An invalid value (see :func:`hoptrace.processors.validate_tenant`) is dropped and counted, never
    propagated: the
    block then runs without a tenant and the context manager yields ``None``; otherwise it yields the
    tenant. Works in sync and async code (the context is restored on exit). Never raises.
    """
    valid = validate_tenant(value)
    ctx = baggage.remove_baggage(TENANT_KEY) if valid is None else baggage.set_baggage(TENANT_KEY, valid)
    token = context.attach(ctx)
    try:
        yield valid
    finally:
        context.detach(token)


@contextmanager
def span(
    name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, AttributeValue] | None = None
) -> Iterator[trace.Span]:
    """Run the block inside a new current span; an escaping exception is recorded and marks it as an error.

    Works in sync and async code. Without an active tracer provider the span is a no-op.
    """
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


@overload
def traced(function: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    *, name: str | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    function: Callable[P, R] | None = None, /, *, name: str | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a sync or async function so each call runs in a span named ``name`` (default: its
    qualified name). Use as ``@traced`` or ``@traced(name=..., kind=...)``."""

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        span_name = name or target.__qualname__
        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                with span(span_name, kind=kind):
                    return await target(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(target)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(span_name, kind=kind):
                return target(*args, **kwargs)

        return run

    return decorate if function is None else decorate(function)
