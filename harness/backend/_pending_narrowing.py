"""Which traces the index has not read yet may meet a search's plan, told from the span keys of their
pending rows (:mod:`._pending_rows`), without reading their spans.

Right after a burst of ingest the index is behind, and the receiver has worked out a :class:`SpanKey`
(service, name, kind, status) per span of each request. A plan's postings on a span name, a root name,
a kind, a status or the resource's ``service.name`` (:mod:`._index_plan`) are tested once per distinct
key, then the rows of every pending request at once: a trace may meet ``Has`` if one of its rows has a
key that passes. An AND intersects the traces its parts allow, an OR unites them; any other posting
(span attributes, root services, durations) narrows nothing. As with the index, what is kept is still
evaluated in full.

A root name is told only as "some span has it" (rows do not say which span is the root). Not thread
safe: the trace index uses it under its lock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hoptrace.harness.backend._index_plan import AllOf, AnyOf, Has, Posting, Requirement, value_key
from hoptrace.harness.backend._pending_rows import PendingRows
from hoptrace.harness.backend._span_keys import SpanKey, SpanKeys

CHUNK = 1024
"""Trace ids made at once when listing what was kept (a search with a limit takes the first few)."""
CACHED_POSTINGS = 256
"""Postings whose test per key is kept; past that the cache starts again."""

KeyTest = Callable[[SpanKey], bool]
_NONE: npt.NDArray[np.bool_] = np.zeros(0, np.bool_)


def key_test(posting: Posting) -> KeyTest | None:
    """Whether a span with a key may have ``posting`` (``None``: its key does not tell)."""
    kind = posting[0]
    if kind in ("name", "rootName"):
        name = posting[1]
        return lambda key: key.name == name
    if kind in ("kind", "status"):
        text = posting[1]
        return lambda key: getattr(key, kind).value == text
    if posting[:3] == ("attr", "resource", "service.name"):
        wanted = posting[3]
        return lambda key: (
            key.has_service
            and any(
                value_key(value) == wanted
                for value in (key.service if isinstance(key.service, tuple) else (key.service,))
            )
        )
    return None


@dataclass(frozen=True, slots=True)
class _Joined:
    """The rows of every pending request at once (kept while the pending requests are the same).

    Each request's traces are *written* traces, numbered in order of writing. A trace written by two
    requests is one *group*: written traces are grouped by the last 8 bytes of their ids, so that an AND
    meets across requests; two traces whose ids end alike share a group, which only keeps more."""

    pending: list[PendingRows]
    keys: npt.NDArray[np.uint32]
    """Per row: its key number."""
    group: npt.NDArray[np.int64]
    """Per row: its trace's group."""
    group_of_written: npt.NDArray[np.int64]
    groups: npt.NDArray[np.uint64]
    """Per group: the last 8 bytes of its ids."""
    offsets: npt.NDArray[np.int64]
    """Per request: the number of its first written trace."""


class PendingNarrowing:
    """See the module docstring."""

    def __init__(self) -> None:
        self._tests: dict[Posting, npt.NDArray[np.bool_]] = {}
        self._joined: _Joined | None = None

    def narrows(self, requirement: Requirement) -> bool:
        """Whether :meth:`traces` tells anything of ``requirement``."""
        return _narrows(requirement)

    def traces(
        self,
        requirement: Requirement,
        pending: list[PendingRows],
        keys: SpanKeys,
        also: Collection[bytes] = (),
    ) -> Iterator[bytes] | None:
        """The ids of the traces of ``pending`` whose rows may meet ``requirement``, and of those in
        ``also``, each once, most recently written first, listed lazily (``None``: not narrowed). Every
        key number in ``pending`` must be below ``len(keys)``."""
        if not pending:
            self._joined = None  # the rows of requests read since are not kept alive
        if not _narrows(requirement):
            return None
        if not pending:
            return iter(())
        joined = self._join(pending)
        chosen = self._groups(requirement, keys, joined)
        assert chosen is not None
        for trace_id in also:
            chosen[joined.groups == np.frombuffer(trace_id[8:16], dtype="<u8")[0]] = True
        return _written_ids(joined, np.flatnonzero(chosen[joined.group_of_written])[::-1])

    def _join(self, pending: list[PendingRows]) -> _Joined:
        known = self._joined
        if (
            known is not None
            and len(known.pending) == len(pending)
            and all(a is b for a, b in zip(known.pending, pending, strict=True))
        ):
            return known
        tails = np.concatenate([rows.trace_tail for rows in pending])
        offsets = np.cumsum([0, *(len(rows.trace_ids) for rows in pending)])
        starts = offsets.tolist()
        ordered = np.sort(tails)
        if not (ordered[1:] == ordered[:-1]).any():  # no trace in two requests (the usual): as written
            groups, group_of_written = tails, np.arange(len(tails), dtype=np.int64)
            group = np.concatenate([rows.trace + at for rows, at in zip(pending, starts, strict=False)])
        else:
            groups, inverse = np.unique(tails, return_inverse=True)
            group_of_written = inverse.reshape(-1).astype(np.int64)
            # Per request, not one array of every row's written trace first: fresh memory costs page faults.
            group = np.concatenate(
                [
                    group_of_written[at : at + len(rows.trace_ids)][rows.trace]
                    for rows, at in zip(pending, starts, strict=False)
                ]
            )
        self._joined = joined = _Joined(
            pending,
            np.concatenate([rows.key for rows in pending]),
            group,
            group_of_written,
            groups,
            offsets[:-1],
        )
        return joined

    def _groups(
        self, requirement: Requirement, keys: SpanKeys, joined: _Joined
    ) -> npt.NDArray[np.bool_] | None:
        """Per group of ``joined``, whether its traces may meet ``requirement`` (``None``: not told)."""
        if isinstance(requirement, Has):
            test = key_test(requirement.posting)
            if test is None:
                return None
            chosen = np.zeros(len(joined.groups), dtype=np.bool_)
            chosen[joined.group[self._passing(requirement.posting, test, keys)[joined.keys]]] = True
            return chosen
        if isinstance(requirement, AllOf):
            parts = [self._groups(one, keys, joined) for one in requirement.parts]
            found = [part for part in parts if part is not None]
            return np.logical_and.reduce(found) if found else None
        if isinstance(requirement, AnyOf):
            parts = [self._groups(one, keys, joined) for one in requirement.parts]
            known = [part for part in parts if part is not None]
            return np.logical_or.reduce(known) if len(known) == len(parts) else None
        return None

    def _passing(self, posting: Posting, test: KeyTest, keys: SpanKeys) -> npt.NDArray[np.bool_]:
        """Per key number, whether it passes ``test`` (tested once per key: new keys as they come)."""
        known = self._tests.get(posting, _NONE)
        if len(known) < len(keys):
            added = np.fromiter((test(keys[number]) for number in range(len(known), len(keys))), np.bool_)
            known = np.concatenate([known, added])
            if posting not in self._tests and len(self._tests) >= CACHED_POSTINGS:
                self._tests.clear()
            self._tests[posting] = known
        return known


def _narrows(requirement: Requirement) -> bool:
    """Whether some posting of ``requirement`` can be told from keys (quick, before joining rows)."""
    if isinstance(requirement, Has):
        return key_test(requirement.posting) is not None
    if isinstance(requirement, AllOf):
        return any(_narrows(part) for part in requirement.parts)
    if isinstance(requirement, AnyOf):
        return all(_narrows(part) for part in requirement.parts)
    return False


def _written_ids(joined: _Joined, written: npt.NDArray[np.intp]) -> Iterator[bytes]:
    """The ids of ``written`` traces (numbers, newest first), each once (at its last write)."""
    seen: set[bytes] = set()
    for begin in range(0, len(written), CHUNK):
        chunk = written[begin : begin + CHUNK]
        requests = np.searchsorted(joined.offsets, chunk, side="right") - 1
        firsts = joined.offsets[requests]
        for request, at in zip(requests.tolist(), (chunk - firsts).tolist(), strict=True):
            trace_id = joined.pending[request].trace_ids[at]
            if trace_id not in seen:
                seen.add(trace_id)
                yield trace_id
