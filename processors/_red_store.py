"""Where RED series keep their numbers: the layout of a series' cells, and the in-memory store.

A series is ``SERIES_CELLS`` integer cells: the exemplar sequence number (odd while an exemplar is being
written), the 15 bucket counts (not cumulative), the duration sum in ns, then per bucket its exemplar:
trace id (high, low 64 bits), span id, duration ns, end time ns. By default the cells are a list in process
memory (:class:`MemoryStore`); a service of several processes keeps them in a memory-mapped file instead
(:mod:`hoptrace.processors._red_file`, imported only then).
"""

from __future__ import annotations

from collections.abc import Mapping

BUCKETS = 15
"""The 14 bounds of the latency histogram and ``+Inf``."""
SEQUENCE = 0
FIRST_BUCKET = 1
TOTAL = FIRST_BUCKET + BUCKETS
FIRST_EXEMPLAR = TOTAL + 1
EXEMPLAR_CELLS = 5
SERIES_CELLS = FIRST_EXEMPLAR + EXEMPLAR_CELLS * BUCKETS

Cells = memoryview | list[int]
"""A series' cells: a list in memory, a ``memoryview`` of unsigned 64-bit cells (``Q``) over a file."""


class MemoryStore:
    """Series cells in this process's memory (the default). Not thread-safe: the processor's lock guards
    it."""

    shared_directory: str | None = None

    def __init__(self) -> None:
        self._failed = 0

    def allocate(self, labels: Mapping[str, str]) -> Cells:
        return [0] * SERIES_CELLS  # a list: indexing it is cheaper than a memoryview's

    def add_failed(self, count: int = 1) -> int:
        self._failed += count
        return self._failed

    @property
    def failed(self) -> int:
        return self._failed
