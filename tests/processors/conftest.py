from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import baggage, context

from processors import TENANT_KEY


@contextmanager
def tenant_baggage(value: str, key: str = TENANT_KEY) -> Iterator[None]:
    """Make ``value`` the baggage entry ``key`` of the current context for the block."""
    token = context.attach(baggage.set_baggage(key, value))
    try:
        yield
    finally:
        context.detach(token)
