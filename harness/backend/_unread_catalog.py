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

Complete, it also proves absences for searches (:meth:`lacks`): a span name, kind, status or string
attribute value that no unread batch had is in no span the index has not read, unless the name's values
overflowed (more than autocomplete keeps) in a batch not read yet.

Not thread safe: the trace index uses it under its lock for pending changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from hoptrace.harness.backend._attribute_facts import AttributeFact
from hoptrace.harness.backend._index_plan import AllOf, AnyOf, Has, Posting, Requirement
from hoptrace.harness.backend._tag_catalog import Tag, TagCatalog


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
        self._overflowed_at: dict[Tag, int] = {}
        """The last batch in which each overflowed name was overflowed (its values were not all kept)."""

    def note(self, facts: Iterable[AttributeFact] | None) -> None:
        """Number a stored batch, and record its facts (``None``: not known)."""
        self.queued += 1
        if facts is None:
            self._gap = self.queued
        else:
            self._catalog.age([(facts, self.queued)])
            for tag in self._catalog.overflowed:
                self._overflowed_at[tag] = self.queued

    def read_through(self, mark: int) -> None:
        """The index has read every trace written by batches up to ``mark`` (a value of :attr:`queued`)."""
        if mark > self._read_through:
            self._read_through = mark
            self._catalog.forget_older_than(mark + 1)
            self._overflowed_at = {tag: at for tag, at in self._overflowed_at.items() if at > mark}

    @property
    def complete(self) -> bool:
        """Whether every batch the index has not read gave its facts."""
        return self._gap <= self._read_through

    def names(self) -> dict[str, list[str]]:
        return self._catalog.names(self._read_through + 1)

    def values(self, scopes: Iterable[str], key: str) -> list[tuple[str, str]]:
        return self._catalog.values(scopes, key, self._read_through + 1)

    def lacks(self, requirement: Requirement) -> bool:
        """Whether no batch the index has not read can meet ``requirement`` (a plan of
        :mod:`._index_plan`): ``False`` when it cannot tell (not :attr:`complete`, or nothing it knows)."""
        return self.complete and self._lacks(requirement)

    def _lacks(self, requirement: Requirement) -> bool:
        if isinstance(requirement, Has):
            found = catalogued(requirement.posting)
            if found is None or self._overflowed_at.get(found[0], 0) > self._read_through:
                return False
            return not self._catalog.has_value(found[0], found[1], self._read_through + 1)
        if isinstance(requirement, AllOf):
            return any(self._lacks(part) for part in requirement.parts)
        if isinstance(requirement, AnyOf):
            return all(self._lacks(part) for part in requirement.parts)
        return False


def catalogued(posting: Posting) -> tuple[Tag, tuple[str, str]] | None:
    """The name and typed value the catalogue keeps for what a span with ``posting`` has (``None`` if it
    keeps nothing that tells: numbers, root services). A root name is a span's name."""
    if posting[0] in ("name", "rootName"):
        return ("intrinsic", "name"), ("string", posting[1])
    if posting[0] in ("kind", "status"):
        return ("intrinsic", posting[0]), ("keyword", posting[1])
    if posting[0] == "attr" and posting[3].startswith("s"):  # a string value
        return (posting[1], posting[2]), ("string", posting[3][1:])
    return None
