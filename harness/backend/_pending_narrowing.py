"""Which traces the index has not read yet may meet a search's plan, told from the span keys of their
pending rows (:mod:`._pending_rows`), without reading their spans.

Right after a burst of ingest the index is behind, and the receiver has worked out a :class:`SpanKey`
(service, name, kind, status) per span of each request. A plan's postings on a span name, a root name,
a kind, a status or the resource's ``service.name`` (:mod:`._index_plan`) are tested once per distinct
key, then the rows of every pending request at once: a trace may meet ``Has`` if one of its rows has a
key that passes. An AND intersects the traces its parts allow, an OR unites them; any other posting
(span attributes, root services, durations) narrows nothing. As with the index, what is kept is still
evaluated in full.

The rows' keys are copied into growing arrays as the index queues each request (:meth:`add`: a copy of
~1000 numbers, under the index's pending lock), so that a search right after a burst does not gather
~500 requests' rows first (~10-15 ms of fresh memory at 500k spans). A trace written by two requests is
found by the last 8 bytes of its id, so that an AND meets across requests (two traces whose ids end
alike count as one, which only keeps more). A root name is told only as "some span has it" (rows do not
say which span is the root). Not thread safe: the trace index calls :meth:`add`, :meth:`taken` and
:meth:`view` under its pending lock, :meth:`traces` under its lock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hoptrace.harness.backend._index_plan import AllOf, AnyOf, Has, Posting, Requirement, value_key
from hoptrace.harness.backend._pending_rows import PendingRows
from hoptrace.harness.backend._span_keys import SpanKey, SpanKeys

INITIAL_ROWS = 4096
"""Rows the arrays hold at first (they double as requests come)."""
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
class PendingView:
    """The rows of the requests pending at one moment (arrays never written again)."""

    batches: list[PendingRows | None]
    written_at: list[int]
    """Per batch, the number of its first written trace; then the end."""
    keys: npt.NDArray[np.uint32]
    """Per row: its key number."""
    written: npt.NDArray[np.int32]
    """Per row: its written trace's number (each request's traces numbered in order of writing)."""
    tails: npt.NDArray[np.uint64]
    """Per written trace from ``written_at[0]`` on: the last 8 bytes of its id."""


class PendingNarrowing:
    """See the module docstring."""

    def __init__(self) -> None:
        self._tests: dict[Posting, npt.NDArray[np.bool_]] = {}
        self._grouping: tuple[tuple[Any, int, int], npt.NDArray[np.int64] | None] | None = None
        """The last view's groups (see :meth:`_group`), by its tails' array, start and length."""
        self._start()

    def _start(self) -> None:
        """Empty, in new arrays (views handed out earlier are never written again)."""
        self._grouping = None
        self._batches: list[PendingRows | None] = []
        self._first = 0
        self._row_at = [0]
        self._written_at = [0]
        self._keys = np.zeros(INITIAL_ROWS, np.uint32)
        self._written = np.zeros(INITIAL_ROWS, np.int32)
        self._tails = np.zeros(INITIAL_ROWS // 4, np.uint64)

    def add(self, rows: PendingRows | None) -> None:
        """A request the index queued, with its rows (``None``: none worked out). Quick."""
        row, written = self._row_at[-1], self._written_at[-1]
        if rows is not None:
            count, traces = len(rows.key), len(rows.trace_ids)
            self._keys = _fit(self._keys, row + count, row)
            self._written = _fit(self._written, row + count, row)
            self._tails = _fit(self._tails, written + traces, written)
            self._keys[row : row + count] = rows.key
            np.add(rows.trace, written, out=self._written[row : row + count])
            self._tails[written : written + traces] = rows.trace_tail
            row, written = row + count, written + traces
        self._batches.append(rows)
        self._row_at.append(row)
        self._written_at.append(written)

    def taken(self, count: int) -> None:
        """The index took the first ``count`` requests it had not taken yet."""
        self._first += count
        if not count:
            return
        if self._first >= len(self._batches):
            self._start()
        elif self._first >= 64 and self._first * 2 >= len(self._batches):  # keep what is pending only
            first, row, written = self._first, self._row_at[self._first], self._written_at[self._first]
            end, written_end = self._row_at[-1], self._written_at[-1]
            self._keys = self._keys[row:end].copy()
            self._written = self._written[row:end] - written
            self._tails = self._tails[written:written_end].copy()
            self._batches = self._batches[first:]
            self._row_at = [at - row for at in self._row_at[first:]]
            self._written_at = [at - written for at in self._written_at[first:]]
            self._first = 0

    def view(self) -> PendingView:
        """The rows of the requests not taken yet, in the order they were queued."""
        first, row, end = self._first, self._row_at[self._first], self._row_at[-1]
        written, written_end = self._written_at[first], self._written_at[-1]
        return PendingView(
            self._batches[first:],
            self._written_at[first:],
            self._keys[row:end],
            self._written[row:end],
            self._tails[written:written_end],
        )

    def narrows(self, requirement: Requirement) -> bool:
        """Whether :meth:`traces` tells anything of ``requirement``."""
        return _narrows(requirement)

    def traces(
        self, requirement: Requirement, view: PendingView, keys: SpanKeys, also: Collection[bytes] = ()
    ) -> Iterator[bytes] | None:
        """The ids of the traces of ``view`` whose rows may meet ``requirement``, and of those in
        ``also``, each once, most recently written first, listed lazily (``None``: not narrowed). Every
        batch of ``view`` must have rows, every key number in them be below ``len(keys)``."""
        if not _narrows(requirement):
            return None
        if not len(view.tails):
            return iter(())
        first = view.written_at[0]
        group = self._group(view)
        # Units: written traces (numbered as ``view.written``), or groups of them when a trace was written
        # by two requests (numbered from 0).
        chosen = self._chosen(requirement, keys, view, group, len(view.tails) + first)
        assert chosen is not None
        for trace_id in also:
            same = np.flatnonzero(view.tails == np.frombuffer(trace_id[8:16], dtype="<u8")[0])
            chosen[same + first if group is None else group[same]] = True
        picked = chosen[first:] if group is None else chosen[group]
        return _written_ids(view, np.flatnonzero(picked)[::-1] + first)

    def _group(self, view: PendingView) -> npt.NDArray[np.int64] | None:
        """Per written trace of ``view``, its group (``None``: no trace written twice)."""
        key = (view.tails.base, view.written_at[0], len(view.tails))
        known = self._grouping
        if known is not None and known[0][0] is key[0] and known[0][1:] == key[1:]:
            return known[1]
        order = np.argsort(view.tails)
        ordered = view.tails[order]
        starts_group = np.empty(len(ordered), dtype=np.bool_)
        starts_group[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
        group = None
        if not starts_group.all():  # one argsort, not a sort then np.unique's own
            group = np.empty(len(ordered), dtype=np.int64)
            group[order] = np.cumsum(starts_group) - 1
        self._grouping = (key, group)
        return group

    def _chosen(
        self,
        requirement: Requirement,
        keys: SpanKeys,
        view: PendingView,
        group: npt.NDArray[np.int64] | None,
        units: int,
    ) -> npt.NDArray[np.bool_] | None:
        """Per unit, whether its traces may meet ``requirement`` (``None``: not told)."""
        if isinstance(requirement, Has):
            test = key_test(requirement.posting)
            if test is None:
                return None
            chosen = np.zeros(units, dtype=np.bool_)
            # Only the rows that pass are mapped to their units (a selective posting passes few).
            written = view.written[self._passing(requirement.posting, test, keys)[view.keys]]
            chosen[written if group is None else group[written - view.written_at[0]]] = True
            return chosen
        if isinstance(requirement, AllOf | AnyOf):
            parts = [self._chosen(one, keys, view, group, units) for one in requirement.parts]
            known = [part for part in parts if part is not None]
            if isinstance(requirement, AllOf):
                return np.logical_and.reduce(known) if known else None
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


def _fit(array: npt.NDArray[Any], size: int, used: int) -> npt.NDArray[Any]:
    """``array``, or a copy of its first ``used`` values in one twice as large if ``size`` does not fit."""
    if size <= len(array):
        return array
    grown = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


def _written_ids(view: PendingView, written: npt.NDArray[np.intp]) -> Iterator[bytes]:
    """The ids of ``written`` traces (numbers, newest first), each once (at its last write)."""
    seen: set[bytes] = set()
    starts = np.array(view.written_at[:-1], dtype=np.int64)
    for begin in range(0, len(written), CHUNK):
        chunk = written[begin : begin + CHUNK]
        batches = np.searchsorted(starts, chunk, side="right") - 1
        for batch, at in zip(batches.tolist(), (chunk - starts[batches]).tolist(), strict=True):
            rows = view.batches[batch]
            assert rows is not None
            trace_id = rows.trace_ids[at]
            if trace_id not in seen:
                seen.add(trace_id)
                yield trace_id
