"""The tenant: its baggage key, its validation, and the processor that puts it on every span.

Validation is shared by the bootstrap (which decides what to propagate) and by the processor (which
decides what to record): a value that fails it is never propagated nor recorded.
"""

from __future__ import annotations

import functools
import logging
import re
import threading

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor

from hoptrace.processors._span_access import (
    BAGGAGE_KEY,
    FAST,
    add_validated_attribute,
    baggage_value,
    current_context,
)

logger = logging.getLogger(__name__)

TENANT_KEY = "tenant.id"
"""The W3C baggage key and the span attribute that carry the tenant."""

TENANT_MAX_LENGTH = 64
_VALID_CACHE_SIZE = 4096
_NO_BAGGAGE: dict[str, object] = {}
_INLINE_READS = BAGGAGE_KEY is not None and FAST
"""Whether on_start reads the baggage and writes the attribute itself (the API and SDK were recognised)."""


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


@functools.cache
def _tenant_pattern() -> re.Pattern[str]:
    # Compiled on first use, not at import: every traced service imports this module at start-up.
    return re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


invalid_tenants = InvalidTenantCounter()
"""Process-wide count of tenant values dropped by :func:`validate_tenant`."""


def validate_tenant(value: object) -> str | None:
    """Return ``value`` if it is a valid tenant, else ``None`` (and count the drop).

    A valid tenant is a ``str`` of 1 to 64 characters from ``[A-Za-z0-9._:-]`` that starts with a letter
    or a digit. Never raises. Thread-safe.
    """
    if isinstance(value, str) and _tenant_pattern().fullmatch(value):
        return value
    invalid_tenants.record(value)
    return None


class TenantSpanProcessor(SpanProcessor):
    """Copies the validated tenant into the ``tenant.id`` attribute of every span, at span start.

    The tenant comes from the W3C baggage entry ``baggage_key`` (default ``tenant.id``) of the span's
    parent context. Without one, it comes from the span attribute ``fallback_attribute`` if set at span
    creation (e.g. ``messaging.rabbitmq.tenant``), else from ``default``. Every candidate goes through
    :func:`validate_tenant`: an invalid value is dropped and counted, and the next source is tried.

    Raises ``ValueError`` at construction for an empty ``baggage_key`` or an invalid ``default``.
    ``on_start`` never raises nor blocks; thread-safe.
    """

    def __init__(
        self,
        *,
        baggage_key: str = TENANT_KEY,
        fallback_attribute: str | None = None,
        default: str | None = None,
    ) -> None:
        if not baggage_key:
            raise ValueError("baggage_key must be a non-empty string")
        if default is not None and not _tenant_pattern().fullmatch(default):
            raise ValueError(f"default tenant {default!r} is not a valid tenant (1-64 of [A-Za-z0-9._:-])")
        self._baggage_key = baggage_key
        self._fallback_attribute = fallback_attribute
        self._default = default
        self._baggage_only = fallback_attribute is None and default is None
        # Valid tenants seen so far: skips the regex on the hot path. Bounded: cleared when full.
        self._valid: dict[str, None] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            try:
                if _INLINE_READS:
                    # The hot path (see _span_access): the baggage entry in two C-level lookups; a tenant
                    # seen before goes straight into the span's attribute dict when no span limit applies
                    # (a span starting has not frozen its attributes yet; unlimited attributes, maxlen None,
                    # raise here and take the slow path).
                    value = (
                        (parent_context if parent_context is not None else current_context())
                        .get(BAGGAGE_KEY, _NO_BAGGAGE)  # type: ignore[arg-type]
                        .get(self._baggage_key)  # type: ignore[attr-defined]  # a dict: the API's baggage
                    )
                    if value in self._valid:
                        attributes = span._attributes
                        if (
                            attributes.__class__ is BoundedAttributes
                            and attributes.max_value_len is None
                            and len(attributes._dict) < attributes.maxlen  # type: ignore[operator]
                        ):
                            attributes._dict[TENANT_KEY] = value
                            return
                    elif value is None and self._baggage_only:
                        return
            except Exception:  # a context, value or span these reads do not fit: the public API's way
                pass
            self._start_slowly(span, parent_context)
        except Exception:
            logger.exception("hoptrace: TenantSpanProcessor.on_start failed; span left without tenant")

    def _start_slowly(self, span: Span, parent_context: Context | None) -> None:
        tenant = self._tenant(baggage_value(self._baggage_key, parent_context))
        if tenant is None and self._fallback_attribute is not None:
            tenant = self._tenant((span.attributes or {}).get(self._fallback_attribute))
        if tenant is None:
            tenant = self._default
        if tenant is not None:
            add_validated_attribute(span, TENANT_KEY, tenant)

    def _tenant(self, value: object) -> str | None:
        if value is None:
            return None
        if value.__class__ is str and value in self._valid:
            return value
        tenant = validate_tenant(value)
        if tenant is not None:
            if len(self._valid) >= _VALID_CACHE_SIZE:
                self._valid.clear()
            self._valid[tenant] = None
        return tenant
