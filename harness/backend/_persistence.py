"""Optional on-disk copy of the store in SQLite, so a local stack keeps its traces across restarts.

Stored spans are queued by a :class:`Receiver` listener and written by one background thread, so
ingest never waits for the disk; when the queue is full, batches are dropped and counted (the
in-memory store still has them). The file keeps at most ``max_spans`` spans, oldest deleted first,
like the store. On start, :func:`load_spans` returns the newest spans that fit the store's
limits. SQLite (stdlib ``sqlite3``) does the storage; hoptrace only chooses the schema.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from hoptrace.harness.backend._store import SPAN_OVERHEAD_BYTES, SpanOrigin, StoreLimits

logger = logging.getLogger(__name__)

StoredSpan = tuple[bytes, SpanOrigin, bytes]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS origins (
    id INTEGER PRIMARY KEY,
    resource BLOB NOT NULL, resource_schema_url TEXT NOT NULL,
    scope BLOB NOT NULL, scope_schema_url TEXT NOT NULL,
    UNIQUE (resource, resource_schema_url, scope, scope_schema_url)
);
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    trace_id BLOB NOT NULL,
    origin_id INTEGER NOT NULL REFERENCES origins (id),
    span BLOB NOT NULL
);
"""


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(_SCHEMA)
    return connection


def load_spans(path: str | Path, limits: StoreLimits) -> list[StoredSpan]:
    """The newest spans in the SQLite file at ``path`` that fit ``limits``, oldest first (with shared
    origins). Creates the file if needed; raises ``sqlite3.Error`` if it is unusable."""
    connection = _connect(Path(path))
    try:
        origins: dict[int, SpanOrigin] = {
            row[0]: SpanOrigin(row[1], row[2], row[3], row[4])
            for row in connection.execute(
                "SELECT id, resource, resource_schema_url, scope, scope_schema_url FROM origins"
            )
        }
        newest_first: list[StoredSpan] = []
        byte_count = 0
        rows = connection.execute("SELECT trace_id, origin_id, span FROM spans ORDER BY id DESC")
        for trace_id, origin_id, span in rows:
            byte_count += len(span) + SPAN_OVERHEAD_BYTES
            if len(newest_first) >= limits.max_spans or byte_count > limits.max_bytes:
                break
            origin = origins.get(origin_id)
            if origin is not None:
                newest_first.append((trace_id, origin, span))
    finally:
        connection.close()
    newest_first.reverse()
    return newest_first


class SqlitePersistence:
    """Writes stored spans to ``path`` on a background thread; see the module docstring.

    Raises ``sqlite3.Error`` (or ``OSError``) at construction if the file cannot be opened.
    """

    def __init__(self, path: str | Path, limits: StoreLimits, max_queued_spans: int = 200_000) -> None:
        self.path = Path(path)
        self._limits = limits
        self._max_queued_spans = max_queued_spans
        _connect(self.path).close()  # fail now, in the caller's thread, if the file is unusable
        self._queue: deque[Sequence[StoredSpan]] = deque()
        self._queued_spans = 0
        self._busy = False
        self._written = self._dropped = 0
        self._closing = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="hoptrace-backend-sqlite", daemon=True)
        self._thread.start()

    def add(self, spans: Sequence[StoredSpan]) -> None:
        """Queue stored spans for writing (a :class:`Receiver` listener). Never blocks on the disk."""
        with self._condition:
            if self._queued_spans + len(spans) > self._max_queued_spans:
                self._dropped += len(spans)
                return
            self._queue.append(spans)
            self._queued_spans += len(spans)
            self._condition.notify_all()

    def flush(self, timeout_seconds: float) -> bool:
        """Block until every queued span is on disk; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._queue and not self._busy, timeout_seconds)

    def counters(self) -> tuple[int, int]:
        """``(spans written, spans not written because the queue was full)``."""
        with self._condition:
            return self._written, self._dropped

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Write what is queued (up to ``timeout_seconds``), then stop the writer thread."""
        self.flush(timeout_seconds)
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout=timeout_seconds)

    def _run(self) -> None:
        connection = _connect(self.path)
        origin_ids: dict[tuple[bytes, str, bytes, str], int] = {}
        try:
            while True:
                with self._condition:
                    self._condition.wait_for(lambda: self._queue or self._closing)
                    if not self._queue:
                        return
                    batches = list(self._queue)
                    self._queue.clear()
                    count, self._queued_spans = self._queued_spans, 0
                    self._busy = True
                try:
                    self._write(connection, origin_ids, batches)
                except sqlite3.Error:
                    logger.exception(
                        "could not write %d spans to %s; they stay in memory only", count, self.path
                    )
                    count = 0
                with self._condition:
                    self._written += count
                    self._busy = False
                    self._condition.notify_all()
        finally:
            connection.close()

    def _write(
        self,
        connection: sqlite3.Connection,
        origin_ids: dict[tuple[bytes, str, bytes, str], int],
        batches: list[Sequence[StoredSpan]],
    ) -> None:
        rows = []
        connection.execute("BEGIN")
        try:
            for batch in batches:
                for trace_id, origin, span in batch:
                    key = (origin.resource, origin.resource_schema_url, origin.scope, origin.scope_schema_url)
                    origin_id = origin_ids.get(key)
                    if origin_id is None:
                        connection.execute("INSERT OR IGNORE INTO origins VALUES (NULL, ?, ?, ?, ?)", key)
                        (origin_id,) = connection.execute(
                            "SELECT id FROM origins WHERE resource = ? AND resource_schema_url = ? "
                            "AND scope = ? AND scope_schema_url = ?",
                            key,
                        ).fetchone()
                        origin_ids[key] = origin_id
                    rows.append((trace_id, origin_id, span))
            connection.executemany("INSERT INTO spans (trace_id, origin_id, span) VALUES (?, ?, ?)", rows)
            # Keep the file bounded like the store: drop the oldest spans past max_spans.
            connection.execute(
                "DELETE FROM spans WHERE id <= (SELECT MAX(id) FROM spans) - ?", (self._limits.max_spans,)
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
