"""Gives the C heap's free memory back to the operating system once a burst of ingest is over.

Each OTLP request is parsed by upb into arenas the C allocator carves from the heap, and freed as soon as
its spans are stored; the stored spans and index entries allocated meanwhile sit between those holes, so
glibc cannot shrink the heap and keeps them resident. With traces written by several requests (the
`--spread` workload of ``bench/backend_query_latency.py``: 500k spans) that was ~165 bytes of resident
memory per stored span, which ``malloc_trim(0)`` gave back in ~7 ms (ctypes releases the interpreter lock
meanwhile). Only glibc has ``malloc_trim``; elsewhere :func:`free_heap` does nothing. Thread safe.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

MIN_INTERVAL_SECONDS = 5.0
"""At most one trim in this long (a trickle of requests ends a "burst" every few milliseconds)."""

_lock = threading.Lock()
_last = float("-inf")


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (AttributeError, OSError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def free_heap() -> None:
    """Give free heap memory back to the system, unless that was done in the last
    :data:`MIN_INTERVAL_SECONDS` or the C library cannot. Blocks for milliseconds (not the interpreter)."""
    global _last
    if _TRIM is None:
        return
    with _lock:
        now = time.monotonic()
        if now - _last < MIN_INTERVAL_SECONDS:
            return
        _last = now
    _TRIM(0)
