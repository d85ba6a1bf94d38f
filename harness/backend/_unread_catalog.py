"""Tag names and values of what the trace index has not read yet, so that autocomplete answers right after
a burst of ingest without waiting for the index to catch up.

The receiver works out each request's facts at ingest (:mod:`._request_facts`, ~4k instructions per span)
and the store hands them to the index with the trace ids it wrote. Requests are numbered as they arrive;
each name and value keeps the number of the last request that had it (a :class:`TagCatalog` numbered by
request). Once the index has read every trace written up to request *n*, what those requests gave is in
its own catalogue, and names and values last seen at *n* or before are dropped here. A name or value is
therefore in the index's catalogue or here, and the answer is their union.

A batch stored without facts (a request with invalid spans, or spans added to the store directly) leaves
a *gap*: until the index has read past it, this catalogue cannot answer (:meth:`complete` is false) and
the caller reads the rest into the index first, as before.

Not thread safe: the trace index uses it under its lock for pending changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from hoptrace.harness.backend._attribute_facts import AttributeFact
from hoptrace.harness.backend._tag_catalog import TagCatalog


class UnreadCatalog:
    """See the module docstring."""

    def __init__(self) -> None:
        self._catalog = TagCatalog()
        self.queued = 0
        """Requests (and other batches) stored so far."""
        self._gap = 0
        """The number of the last batch stored without facts."""
        self._read_through = 0
        """Every batch up to this number is read by the index."""

    def note(self, facts: Iterable[AttributeFact] | None) -> None:
        """Number a stored batch, and record its facts (``None``: not known)."""
        self.queued += 1
        if facts is None:
            self._gap = self.queued
        else:
            self._catalog.age([(facts, self.queued)])

    def read_through(self, mark: int) -> None:
        """The index has read every trace written by batches up to ``mark`` (a value of :attr:`queued`)."""
        if mark > self._read_through:
            self._read_through = mark
            self._catalog.forget_older_than(mark + 1)

    @property
    def complete(self) -> bool:
        """Whether every batch the index has not read gave its facts."""
        return self._gap <= self._read_through

    def names(self) -> dict[str, list[str]]:
        return self._catalog.names(self._read_through + 1)

    def values(self, scopes: Iterable[str], key: str) -> list[tuple[str, str]]:
        return self._catalog.values(scopes, key, self._read_through + 1)
