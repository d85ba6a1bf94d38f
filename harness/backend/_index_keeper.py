"""Keeps trace indexes caught up with ingest in the background, in the gaps ingest leaves.

Indexing a span costs about as much CPU as ingesting it, and CPython runs one thread at a time: done
on the receiving thread it would halve the ingest rate. So the receivers only *poke* the keeper, and one
daemon thread reads what was stored while no ingest request is in flight (nor finished within the
query gate's idle window) and no query is admitted or waiting (nor ended within its own window), a few
traces at a time, so that a request arriving meanwhile waits for at most one step. The first step after
a burst of ingest gives the heap's free memory back (:mod:`._free_heap`). A query that finds
the index behind reads the rest itself (``TraceIndex.refresh``), or searches what is not read yet by its
bytes (``_unread_search``).

Thread safe. The thread holds indexes weakly, and ends when it has had nothing to do for a while.
"""

from __future__ import annotations

import threading
import time
import weakref

from hoptrace.harness.backend._free_heap import free_heap
from hoptrace.harness.backend._query_gate import INGEST_IDLE_SECONDS
from hoptrace.harness.backend._trace_index import TraceIndex

STEP_TRACES = 128
"""Traces read per step, between two looks at ingest and queries: ~5 ms (the first steps after a burst,
which learn most trace shapes, ~20 ms); a query arriving meanwhile waits for the step. 256 cost 9% less
CPU to catch up, in steps twice as long."""
STEP_PAUSE_SECONDS = 0.001
"""Pause between steps: locks are not fair, and a query waiting to read the rest itself must get in."""
IDLE_EXIT_SECONDS = 5.0
"""The thread ends after this long with nothing to do; the next poke starts another."""

_lock = threading.Lock()
_waiting: weakref.WeakSet[TraceIndex] = weakref.WeakSet()
_wake = threading.Event()
_thread: threading.Thread | None = None
_after_ingest = False
"""Whether ingest held the last steps off (the next one frees the heap: :mod:`._free_heap`)."""


def poke(index: TraceIndex) -> None:
    """Ask for ``index`` to be caught up once ingest pauses. Quick; never blocks on the index."""
    global _thread
    with _lock:
        _waiting.add(index)
        if _thread is None:
            _thread = threading.Thread(target=_run, name="hoptrace-index-keeper", daemon=True)
            _thread.start()
    _wake.set()


def _run() -> None:
    global _thread
    while True:
        if not _wake.wait(IDLE_EXIT_SECONDS):
            with _lock:
                if not _wake.is_set():
                    _thread = None
                    return
        _wake.clear()
        while _step():
            pass


def _step() -> bool:
    """One step of catching up; whether there is more to do."""
    with _lock:
        indexes = list(_waiting)
    global _after_ingest
    more = deferred = False
    for index in indexes:
        store = index.store
        if store is None:
            continue
        now = time.monotonic()
        if store.query_gate.ingest_active(now):
            more = deferred = _after_ingest = True
            continue
        if _after_ingest:  # a burst is over: what parsing its requests freed goes back
            _after_ingest = False
            free_heap()  # in C, without the interpreter lock: queries go on meanwhile
        if store.query_gate.queries_active(now):
            more = deferred = True
        elif index.refresh(budget=STEP_TRACES):
            more = True
            time.sleep(STEP_PAUSE_SECONDS)  # a query waiting for the index's lock takes it now
        else:
            with _lock:
                _waiting.discard(index)
    if deferred:
        time.sleep(INGEST_IDLE_SECONDS / 5)  # leave the interpreter to ingest and queries
    return more
