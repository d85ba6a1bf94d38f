"""The tenant: its baggage key, its validation, and the processor that puts it on every span.

Validation is shared by the bootstrap (which decides what to propagate) and by the processor (which
decides what to record): a value that fails it is never propagated nor recorded.
"""

from __future__ import annotations

import logging
import re
import threading

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

logger = logging.getLogger(__name__)

TENANT_KEY = "tenant.id"
"""The W3C baggage key and the span attribute that carry the tenant."""

TENANT_MAX_LENGTH = 64
_TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class InvalidTenantCounter:
    """Counts tenant values rejected by validation; logs the first rejection once. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def record(self, value: object) -> None:
        with self._lock:
            self._count += 1
            first = self._count == 1
        if first:
            logger.warning(
                "hoptrace: dropped an invalid tenant value %.80r (expected 1-%d characters of "
                "[A-Za-z0-9._:-], starting with a letter or digit); further drops are only counted",
                value,
                TENANT_MAX_LENGTH,
            )


invalid_tenants = InvalidTenantCounter()
"""Process-wide count of tenant values dropped by :func:`validate_tenant`."""


def validate_tenant(value: object) -> str | None:
    """Return ``value`` if it is a valid tenant, else ``None`` (and count the drop).

    A valid tenant is a ``str`` of 1 to 64 characters from ``[A-Za-z0-9._:-]`` that starts with a letter
    or a digit. Never raises. Thread-safe.
    """
    if isinstance(value, str) and _TENANT_PATTERN.fullmatch(value):
        return value
    invalid_tenants.record(value)
    return None


class TenantSpanProcessor(SpanProcessor):
    """Copies the validated tenant from baggage into the ``tenant.id`` attribute of every span at start.

    Minimal version: the baggage key is fixed to ``tenant.id``. Never raises; never blocks.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            value = baggage.get_baggage(TENANT_KEY, parent_context)
            if value is None:
                return
            tenant = validate_tenant(value)
            if tenant is not None:
                span.set_attribute(TENANT_KEY, tenant)
        except Exception:
            logger.exception("hoptrace: TenantSpanProcessor.on_start failed; span left without tenant")

    def on_end(self, span: ReadableSpan) -> None:
        return None
