"""The trace index's postings: per posting (a service, span name, kind, status, or a queried attribute
value), the *holders* whose traces have it.

Traces of one shape (:mod:`._trace_shapes`) share one postings tuple; its holder is that tuple, keyed by
its ``id``, with the shape (which keeps the tuple alive) and the set of traces holding it. A posting
lists holders, not traces, so that indexing a trace adds it to one set, not to one set per posting
(~60 bytes less per span, and most of the CPU of placing it). Not thread safe: the trace index uses it
under its lock.
"""

from __future__ import annotations

from hoptrace.harness.backend._index_plan import AllOf, Has, LongerThan, Posting, Requirement
from hoptrace.harness.backend._trace_shapes import Shape


class HolderPostings:
    """See the module docstring."""

    def __init__(self) -> None:
        self._postings: dict[Posting, set[int]] = {}
        self.canonical: dict[Posting, Posting] = {}
        """Each listed posting, as the one key object traces share (a tuple of pointers: ~8 bytes)."""
        self._holders: dict[int, tuple[Shape, set[bytes]]] = {}

    def clear(self) -> None:
        self._postings.clear()
        self.canonical.clear()
        self._holders.clear()

    def shape_held(self, postings: tuple[Posting, ...]) -> Shape | None:
        """The shape of the holder of ``postings`` (a trace's, see :meth:`hold`), if any."""
        holder = self._holders.get(id(postings))
        return holder[0] if holder is not None else None

    def learn(self, keys: set[tuple[str, str]]) -> None:
        """List the postings of attributes first wanted, from what the holders' shapes kept of them."""
        for holder, (shape, _) in self._holders.items():
            for posting in shape.postings:
                if posting[0] == "attr" and (posting[1], posting[2]) in keys:
                    self._list(posting, holder)

    def _list(self, posting: Posting, holder: int) -> None:
        found = self._postings.get(posting)
        if found is None:
            found = self._postings[posting] = set()
            self.canonical[posting] = posting
        found.add(holder)

    def hold(self, trace_id: bytes, shape: Shape) -> None:
        """Put a trace under its shape's holder (listing the holder if it is new)."""
        key = id(shape.postings)
        holder = self._holders.get(key)
        if holder is None:
            holder = self._holders[key] = (shape, set())
            for posting in shape.indexed:
                self._list(posting, key)
        holder[1].add(trace_id)

    def release(self, trace_id: bytes, held: tuple[Posting, ...]) -> None:
        """Take a trace from the holder of the postings it ``held`` (unlisting a holder left empty)."""
        key = id(held)
        holder = self._holders.get(key)
        if holder is not None:
            holder[1].discard(trace_id)
            if not holder[1]:
                del self._holders[key]
                postings = self._postings
                for posting in held:
                    listed = postings.get(posting)
                    if listed is not None:
                        listed.discard(key)
                        if not listed:
                            del postings[posting]
                            self.canonical.pop(posting, None)

    def traces(self, requirement: Requirement) -> set[bytes] | None:
        """The traces that may satisfy ``requirement`` (``None``: the postings cannot tell)."""
        holders = self._matching(requirement)
        if holders is None:
            return None
        return set().union(*(self._holders[holder][1] for holder in holders))

    def _matching(self, requirement: Requirement) -> set[int] | None:
        if requirement is None or isinstance(requirement, LongerThan):
            return None
        if isinstance(requirement, Has):
            return self._postings.get(requirement.posting, set())
        parts = [self._matching(part) for part in requirement.parts]
        if isinstance(requirement, AllOf):
            known = sorted((p for p in parts if p is not None), key=len)
            if not known:
                return None
            result = set(known[0])
            for other in known[1:]:
                result &= other
            return result
        if any(part is None for part in parts):
            return None
        return set().union(*(part for part in parts if part is not None))

    def values(self, kind: str) -> list[str]:
        """The values listed for postings of ``kind`` (``"name"``, ``"kind"``, ``"rootService"``...)."""
        return sorted(posting[1] for posting in self._postings if posting[0] == kind)
