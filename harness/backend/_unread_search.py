"""Searching traces the index has not read yet, without reading them into the index first.

Right after a burst of ingest the index is behind (it catches up while ingest pauses: seconds for a few
hundred thousand spans). A search arriving then does not wait for it when it can do without:

- a search whose plan (:mod:`._index_plan`) names a span's name or a span attribute's string value needs
  those bytes in the trace's serialized spans (protobuf stores strings as their UTF-8 bytes), so an
  unread trace without them is skipped after a ``bytes`` search (memchr speed), not decoded; the traces
  that hold them are still evaluated in full, so nothing is found that does not match;
- a search whose plan needs nothing (``{ }``, regexes, ``!=``...) would evaluate every trace anyway:
  unread traces are evaluated in turn, and a search with a limit stops there, as with read ones.

A search for a name, kind, status or string value that no request not read yet had (the catalogue of
unread tags proves it: ``UnreadCatalog.lacks``) skips the unread traces without reading them, but for
those with spans read before. Any other search reads the rest into the index first, as before.
Candidates come in the order the index gives them (most recently written first: unread traces, then
read ones), so a search with a limit finds the traces it would have found after catching up. Pure
functions over the store's copies.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, islice

from hoptrace.harness.backend._index_plan import AllOf, AnyOf, Has, Requirement
from hoptrace.harness.backend._store import TraceStore

CHUNK_TRACES = 1024
"""Unread traces copied out of the store at once (between two ticks of the query's clock); the first
chunk is :data:`FIRST_CHUNK_TRACES`, and each next one twice the last, so that a search with a limit
that finds it in the first traces copies few."""
FIRST_CHUNK_TRACES = 64


@dataclass(frozen=True, slots=True)
class Needs:
    """Byte strings a matching trace's serialized spans contain: all of ``all_of``, and at least one
    member of each group in ``any_of``."""

    all_of: tuple[bytes, ...] = ()
    any_of: tuple[tuple[Needs, ...], ...] = ()

    def met_by(self, data: bytes) -> bool:
        return all(part in data for part in self.all_of) and all(
            any(one.met_by(data) for one in group) for group in self.any_of
        )


EVERYTHING = Needs()
"""What a search that the index cannot narrow needs: nothing."""


def needs_of(requirement: Requirement) -> Needs | None:
    """The bytes every trace meeting ``requirement`` holds in its spans (:data:`EVERYTHING` for a plan
    that needs nothing); ``None`` when the plan needs something that cannot be told from them (a
    resource attribute, a kind, a duration): the index must answer."""
    if requirement is None:
        return EVERYTHING
    found = _needs(requirement)
    return None if found is None or found == EVERYTHING else found


def _needs(requirement: Requirement) -> Needs | None:
    if isinstance(requirement, Has):
        return _posting_needs(requirement.posting)
    if isinstance(requirement, AllOf):
        known = [part for part in map(_needs, requirement.parts) if part is not None]
        if not known:
            return None
        return Needs(
            tuple(dict.fromkeys(text for part in known for text in part.all_of)),
            tuple(group for part in known for group in part.any_of),
        )
    if isinstance(requirement, AnyOf):
        parts = [_needs(part) for part in requirement.parts]
        if any(part is None or part == EVERYTHING for part in parts):
            return None
        return Needs(any_of=(tuple(part for part in parts if part is not None),))
    return None


def _posting_needs(posting: tuple[str, ...]) -> Needs | None:
    if posting[0] in ("name", "rootName"):  # a span's name, stored as its UTF-8 bytes
        return Needs((posting[1].encode(),))
    if posting[0] == "attr" and posting[1] == "span":
        key, value = posting[2], posting[3]
        texts = [key.encode()]
        if value.startswith("s"):  # only a string value equals a string (bytes and kvlists match nothing)
            texts.append(value[1:].encode())
        return Needs(tuple(texts))
    return None


def candidates_before_catching_up(
    store: TraceStore, unread: Iterable[bytes], read: list[bytes], needs: Needs, tick: Callable[[], None]
) -> Iterator[bytes]:
    """Trace ids, most recently written first: the ``unread`` traces whose spans hold what ``needs``
    asks, then the index's ``read`` candidates (see ``TraceIndex.split_candidates``)."""
    pending = iter(unread)
    # The longest text every match holds is looked for in a chunk's spans joined (one memchr-speed scan
    # for ~1000 traces, not one join and scan per trace); the traces it is found in are checked in full.
    probe = max(needs.all_of, key=len) if needs.all_of else None
    only_probe = len(needs.all_of) == 1 and not needs.any_of
    size = FIRST_CHUNK_TRACES
    while chunk := list(islice(pending, size)):
        size = min(2 * size, CHUNK_TRACES)
        tick()
        if needs == EVERYTHING:
            yield from chunk
            continue
        joined = store.joined_spans(chunk)
        if probe is None:
            yield from [trace_id for trace_id, data in zip(chunk, joined, strict=True) if needs.met_by(data)]
            continue
        for at in _traces_holding(probe, joined):
            if only_probe or needs.met_by(joined[at]):
                yield chunk[at]
    yield from read


def _traces_holding(text: bytes, traces: list[bytes]) -> list[int]:
    """The positions of the traces (each its spans' bytes joined) that may hold ``text``: all that do,
    and maybe one whose bytes end with its start (a match across two traces)."""
    blob = b"".join(traces)
    found = blob.find(text)
    if found < 0:
        return []
    ends = list(accumulate(map(len, traces)))
    holding = []
    while found >= 0:
        at = bisect_right(ends, found)
        holding.append(at)
        found = blob.find(text, ends[at])
    return holding
