"""The RED processor's key cache: the raw fields of an ended span to its series, without building a key.

The raw fields are the service, the span name, the tenant attribute as it is, and the values of the span
kind and status code. As one tuple key, building, hashing and comparing them cost ~1.5k CPU instructions per
span (bench/processors_overhead.py's instrumented spans, cachegrind). Here they are levels, which the
processor's hot loop indexes directly for ~0.6k: service -> span name -> tenant (dicts: a ``str`` caches
its hash) -> kind value -> status value (lists, one slot each). A combination not cached misses with
``None`` or a ``KeyError`` (``IndexError``, ``TypeError`` for odd fields); the processor then resolves the
series (labels, validation) and :meth:`SeriesKeyCache.remember` caches it. Only kind values 0-4 and status
values 0-2 (``SpanKind``, ``StatusCode``) are cached: a cached slot answers for one combination only. The
hot path indexes the lists with the values it read, unchecked: those of an SDK span's ``SpanKind`` and
``StatusCode`` members, never negative (a negative index would reach another combination's slot).

Not thread-safe: the processor's lock guards it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from opentelemetry.trace import SpanKind, StatusCode

_Value = TypeVar("_Value")

KINDS = len(SpanKind)
STATUS_CODES = len(StatusCode)

Names = dict[Any, dict[Any, list[Any]]]
"""One service's levels: span name -> tenant -> kind value -> status value -> cached value or ``None``."""


class SeriesKeyCache(Generic[_Value]):
    """Raw span fields to a value (a series), bounded: past ``limit`` cached combinations it starts empty.

    The hot path reads ``names_of(service)[name][tenant][kind][status]``, where ``None`` or a lookup error
    means "not cached"; :meth:`get` does the same in one call.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._by_service: dict[str, Names] = {}

    def names_of(self, service: str) -> Names:
        """The levels of ``service``. :meth:`remember` adds to it until the cache starts again; one taken
        before that goes on answering for what it held."""
        names = self._by_service.get(service)
        if names is None:
            names = self._by_service[service] = {}
        return names

    def get(self, service: str, name: object, tenant: object, kind: int, status: int) -> _Value | None:
        """The value cached for these fields, or ``None`` (always for kind or status values out of range)."""
        if not (_in_range(kind, KINDS) and _in_range(status, STATUS_CODES)):
            return None
        try:
            return self._by_service[service][name][tenant][kind][status]  # type: ignore[no-any-return]
        except (KeyError, IndexError, TypeError):
            return None

    def remember(
        self, service: str, name: object, tenant: object, kind: int, status: int, value: _Value
    ) -> None:
        """Cache ``value`` for these fields, unless one cannot be a key here (an unhashable name or tenant,
        a kind or status value out of range): those stay uncached."""
        if not (_in_range(kind, KINDS) and _in_range(status, STATUS_CODES)):
            return
        try:
            hash((name, tenant))
        except TypeError:
            return
        if self._size >= self._limit:  # raw names could grow it forever: start again
            self.clear()
        by_tenant = self.names_of(service).setdefault(name, {})
        by_kind = by_tenant.setdefault(tenant, [None] * KINDS)
        by_status = by_kind[kind] or [None] * STATUS_CODES
        by_kind[kind] = by_status
        if by_status[status] is None:
            self._size += 1
        by_status[status] = value

    def clear(self) -> None:
        self._by_service.clear()
        self._size = 0


def _in_range(value: int, end: int) -> bool:
    return value.__class__ is int and 0 <= value < end  # not a bool, nor another int subclass
