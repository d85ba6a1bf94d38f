"""Queries share the process with ingest without starving it, and each has a deadline.

Queries are CPU-bound Python (decoding and evaluating spans), and CPython runs one thread at a time:
four query loops competing for the interpreter lock cut gRPC ingest from 65k to 2k-15k spans/s. So
the gate does three things:

- it admits at most ``max_concurrent`` queries at once; the others wait (without using the CPU) for up
  to their whole deadline;
- while ingest is active (a request in flight, or one finished in the last :data:`INGEST_IDLE_SECONDS`),
  a running query works for ``slice_seconds`` and then sleeps for ``pause_seconds``, handing the lock
  to ingest: ingest gets at least ``pause / (slice + pause)`` of the interpreter whatever the query load;
- a query past ``timeout_seconds`` raises :class:`QueryTimeout`, which the API answers with 504 as
  Tempo's query frontend does.

Query loops call :meth:`QueryClock.tick` between units of work (one trace). Thread safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hoptrace.harness.backend._errors import BackendError

INGEST_IDLE_SECONDS = 0.05
QUERY_IDLE_SECONDS = 0.02
"""How long after a query the index keeper still leaves the interpreter alone (see
:meth:`QueryGate.queries_active`)."""
DEFAULT_QUERY_TIMEOUT_SECONDS = 30.0


class QueryTimeout(BackendError):
    """A query ran past its deadline (Tempo answers 504 with a plain-text reason)."""


class QueryClock:
    """One admitted query's deadline and time slice; see :meth:`QueryGate.admit`."""

    def __init__(self, gate: QueryGate, deadline: float) -> None:
        self._gate = gate
        self._deadline = deadline
        self._slice_started = time.monotonic()

    def tick(self) -> None:
        """Raise :class:`QueryTimeout` past the deadline; pause if the slice is used up and ingest waits."""
        now = time.monotonic()
        if now > self._deadline:
            raise self._gate.timeout_error()
        gate = self._gate
        if now - self._slice_started >= gate.slice_seconds and gate.ingest_active(now):
            gate.count_pause()
            time.sleep(gate.pause_seconds)
            self._slice_started = time.monotonic()


class QueryGate:
    """Admission, time slicing and deadlines for queries; see the module docstring."""

    def __init__(
        self,
        timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
        max_concurrent: int = 1,
        slice_seconds: float = 0.004,
        pause_seconds: float = 0.008,
        query_idle_seconds: float = QUERY_IDLE_SECONDS,
    ) -> None:
        if timeout_seconds <= 0 or max_concurrent < 1 or slice_seconds <= 0 or pause_seconds < 0:
            raise ValueError("query timeout, concurrency and slices must be positive")
        if query_idle_seconds < 0:
            raise ValueError(f"query_idle_seconds must not be negative, got {query_idle_seconds}")
        self.query_idle_seconds = query_idle_seconds
        self.timeout_seconds = timeout_seconds
        self.slice_seconds = slice_seconds
        self.pause_seconds = pause_seconds
        self._admission = threading.BoundedSemaphore(max_concurrent)
        self._admitted = threading.local()
        self._lock = threading.Lock()
        self._ingest_in_flight = 0
        self._queries = 0
        """Queries admitted or waiting to be."""
        self._ingest_last_end = float("-inf")
        self._queries_last_end = float("-inf")
        self._timeouts = 0
        self._pauses = 0

    @contextmanager
    def admit(self) -> Iterator[QueryClock]:
        """Wait for a query slot (raising :class:`QueryTimeout` if none frees up before the deadline)
        and yield the query's clock. Blocks. A thread already admitted is admitted again at once."""
        deadline = time.monotonic() + self.timeout_seconds
        if getattr(self._admitted, "depth", 0):  # a query within a query, on the same thread
            self._admitted.depth += 1
            try:
                yield QueryClock(self, deadline)
            finally:
                self._admitted.depth -= 1
            return
        with self._lock:
            self._queries += 1
        try:
            if not self._admission.acquire(timeout=self.timeout_seconds):
                raise self.timeout_error()
            self._admitted.depth = 1
            try:
                yield QueryClock(self, deadline)
            finally:
                self._admitted.depth = 0
                self._admission.release()
        finally:
            with self._lock:
                self._queries -= 1
                self._queries_last_end = time.monotonic()

    @contextmanager
    def ingesting(self) -> Iterator[None]:
        """Mark one ingest request in flight (the receivers wrap each request in it)."""
        with self._lock:
            self._ingest_in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._ingest_in_flight -= 1
                self._ingest_last_end = time.monotonic()

    def ingest_active(self, now: float) -> bool:
        return self._ingest_in_flight > 0 or now - self._ingest_last_end < INGEST_IDLE_SECONDS

    def note_quick_query(self) -> None:
        """A query that needs no slot is answered now (tags from the index's catalogue: ~1 ms): the
        index keeper leaves the interpreter alone for ``query_idle_seconds``, as after an admitted one."""
        with self._lock:
            self._queries_last_end = time.monotonic()

    def queries_active(self, now: float | None = None) -> bool:
        """Whether a query is admitted or waiting to be, or (given ``now``) ended less than
        ``query_idle_seconds`` before: the index keeper leaves the interpreter to them. Right after a
        query its response is still being encoded and sent, and clients send queries in bursts (Grafana
        several at once, autocomplete one per keystroke); a step of the keeper then would hold the
        interpreter and the index (~10-50 ms) while they wait."""
        return self._queries > 0 or (
            now is not None and now - self._queries_last_end < self.query_idle_seconds
        )

    def timeout_error(self) -> QueryTimeout:
        with self._lock:
            self._timeouts += 1
        return QueryTimeout(
            f"context deadline exceeded: the query ran past the {self.timeout_seconds:g} s query timeout; "
            "narrow it (a time range, a more selective filter) or raise --query-timeout-seconds"
        )

    def count_pause(self) -> None:
        with self._lock:
            self._pauses += 1

    def pauses(self) -> int:
        """How many times a query paused for ingest."""
        with self._lock:
            return self._pauses

    def timeouts(self) -> int:
        """How many queries timed out."""
        with self._lock:
            return self._timeouts
