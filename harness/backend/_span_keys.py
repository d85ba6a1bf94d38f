"""Span keys: the service, name, kind and status of a span, numbered once per distinct combination.

TraceQL metrics filter and group on these fields most, and a store holds few distinct combinations, so
span columns keep a key's number per span (:mod:`._span_columns`, :mod:`._pending_rows`). One
:class:`SpanKeys` numbers them for both the trace index and the receiver (which works out the keys of a
request's spans at ingest), so that their numbers agree. Numbers are never reused or forgotten. Thread
safe: a new key is numbered under a lock, a known one is found without it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hoptrace.harness._model import AttributeValue, SpanKind, StatusCode
from hoptrace.harness.backend._decode import MAX_VALUE_CHARS

_KINDS = tuple(SpanKind)
_STATUSES = tuple(StatusCode)
MISSING_SERVICE: Any = object()
"""What :func:`service_of` gives for a resource without ``service.name``."""


@dataclass(frozen=True, slots=True)
class SpanKey:
    """What a key number stands for."""

    service: AttributeValue
    """The resource's ``service.name`` (``""`` when ``has_service`` is false)."""
    has_service: bool
    name: str
    kind: SpanKind
    status: StatusCode


def service_of(resource: dict[str, AttributeValue]) -> Any:
    """A resource's ``service.name`` value, or :data:`MISSING_SERVICE`."""
    return resource.get("service.name", MISSING_SERVICE)


def lookup_of(service: Any, name: str, kind: int, status: int) -> tuple[Any, str, int, int]:
    """The dict key of a combination (``kind`` and ``status`` as OTLP numbers them)."""
    return (service if type(service) is str else _hashable(service), name, kind, status)


class SpanKeys:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[SpanKey] = []
        self._ids: dict[tuple[Any, ...], int] = {}
        self._raw_ids: dict[tuple[Any, bytes, int, int], int] = {}
        """:meth:`numbers`' cache: the number of each combination by its UTF-8 name."""

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, number: int) -> SpanKey:
        return self._keys[number]

    def snapshot(self) -> list[SpanKey]:
        """Every key so far, by number (a copy)."""
        return self._keys[:]

    def get(self, lookup: tuple[Any, ...]) -> int | None:
        """The number of a known combination (see :func:`lookup_of`), or ``None``."""
        return self._ids.get(lookup)

    def number(self, lookup: tuple[Any, str, int, int], service: Any) -> int:
        """The number of ``lookup`` (from :func:`lookup_of` with ``service``), numbering it if new."""
        key = self._ids.get(lookup)
        if key is not None:
            return key
        _, name, kind, status = lookup
        with self._lock:
            key = self._ids.get(lookup)
            if key is not None:
                return key
            self._keys.append(
                SpanKey(
                    "" if service is MISSING_SERVICE else service,
                    service is not MISSING_SERVICE,
                    name if len(name) <= MAX_VALUE_CHARS else name[:MAX_VALUE_CHARS],  # as decoding cuts it
                    _KINDS[kind] if 0 <= kind < len(_KINDS) else SpanKind.UNSPECIFIED,
                    _STATUSES[status] if 0 <= status < len(_STATUSES) else StatusCode.UNSET,
                )
            )
            # Published last: a reader that finds the number finds its key in the list.
            key = self._ids[lookup] = len(self._keys) - 1
            return key

    def numbers(
        self,
        services: list[Any],
        service_of_span: npt.NDArray[np.int64],
        names: list[bytes],
        kind: npt.NDArray[np.int64],
        status: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """The number of each span's key, from its service (its position in ``services``, values as
        :func:`service_of` gives them), UTF-8 name, kind (0-5) and status code (0-2): once per distinct
        combination, not per span."""
        distinct: dict[bytes, Any] = dict.fromkeys(names)
        for at, name in enumerate(distinct):
            distinct[name] = at
        name_number = np.fromiter(map(distinct.__getitem__, names), dtype=np.int64, count=len(names))
        combined = ((service_of_span * len(distinct) + name_number) * 8 + kind) * 4 + status
        unique, inverse = np.unique(combined, return_inverse=True)
        rest, status_codes = np.divmod(unique, 4)
        rest, kind_codes = np.divmod(rest, 8)
        service_ats, name_ats = np.divmod(rest, len(distinct))
        known, raw_ids = list(distinct), self._raw_ids
        service_keys = [service if type(service) is str else _hashable(service) for service in services]
        numbers = []
        for service_at, name_at, kind_code, status_code in zip(
            service_ats.tolist(), name_ats.tolist(), kind_codes.tolist(), status_codes.tolist(), strict=True
        ):
            raw = (service_keys[service_at], known[name_at], kind_code, status_code)
            key = raw_ids.get(raw)
            if key is None:  # numbered once per combination seen, whatever the batch
                service = services[service_at]
                lookup = lookup_of(service, known[name_at].decode(), kind_code, status_code)
                key = raw_ids[raw] = self.number(lookup, service)
            numbers.append(key)
        result: npt.NDArray[np.int64] = np.array(numbers, dtype=np.int64)[inverse.reshape(-1)]
        return result


def _hashable(value: Any) -> Any:
    """A dict key that keeps ``1``, ``1.0``, ``True`` and ``"1"`` apart (and every NaN together)."""
    return (type(value).__name__, repr(value))
