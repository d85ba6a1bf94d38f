"""``--db``: an append-only log of accepted requests, so that what was acknowledged survives a crash.

Every accepted ``ExportTraceServiceRequest`` is appended (as the protobuf bytes that were stored) to the
active segment file of a directory, and handed to the operating system with ``write(2)`` before its
sender gets an answer: from then on a process crash (``kill -9``) cannot lose it. A background thread
``fsync``\\ s the active segment every :data:`FSYNC_INTERVAL_SECONDS`, which bounds what a machine crash
can lose. At start, :meth:`RequestLog.replay` yields every record in order and the store is rebuilt
from them (the store's own bounds apply, so only the newest traces are kept).

Records are ``length (u32 BE) | crc32 (u32 BE) | bytes``; a torn or corrupt record (the tail of a
write that a crash interrupted, which was never acknowledged) ends its segment on replay.

The log stays bounded on disk: once it holds more than half of ``max_bytes``, the store's content
(which is all that replay could rebuild anyway) is written as one new segment that replaces all older
ones. When the disk cannot keep up (a write waits longer than :data:`WRITE_WAIT_SECONDS`, fails, or
compaction lags so far that the log reaches ``max_bytes``), :meth:`RequestLog.append` raises
:class:`Unavailable`: the sender gets 503/UNAVAILABLE with a retry delay, never a silent drop.

Written by hand (about a hundred lines over ``os.writev``) because the format is just length, checksum
and the request's own bytes, and what matters is that nothing stands between the answer and one
``write(2)``: the SQLite writer used before kept up with about 25-30k spans/s here, a third of ingest,
and dropped acknowledged spans past that.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hoptrace.harness.backend._errors import Unavailable
from hoptrace.harness.backend._store import SpanRecord, TraceStore, unique_records
from hoptrace.harness.backend._tempo_trace import traces_data

logger = logging.getLogger(__name__)

FSYNC_INTERVAL_SECONDS = 1.0
WRITE_WAIT_SECONDS = 5.0
"""How long an append waits for the disk before the sender is told to retry."""
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
_HEADER = struct.Struct(">II")
_SUFFIX = ".log"


@dataclass(frozen=True, slots=True)
class LogStats:
    appended_requests: int
    appended_bytes: int
    refused_requests: int
    """Requests answered with Unavailable because the disk could not keep up."""
    compactions: int
    disk_bytes: int


class RequestLog:
    """The request log in ``directory``; see the module docstring. Thread safe.

    Raises ``OSError`` at construction if the directory cannot be created or written.
    """

    def __init__(self, directory: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 2:
            raise ValueError(f"the request log's max_bytes must be at least 2, got {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):  # a compaction that a crash interrupted
            leftover.unlink()
        self.max_bytes = max_bytes
        self.compact_bytes = max_bytes // 2
        self._lock = threading.Lock()
        self._segments = self._existing_segments()
        self._disk_bytes = sum(path.stat().st_size for path in self._segments)
        self._fd = -1
        self._active_number = 0
        self._appended_requests = self._appended_bytes = self._refused = self._compactions = 0
        self._compacting = False
        self._closed = threading.Event()
        self._fsync_thread: threading.Thread | None = None
        self._compaction_thread: threading.Thread | None = None
        self._snapshot: Callable[[], Iterable[bytes]] = lambda: ()

    def _existing_segments(self) -> list[Path]:
        segments = [path for path in self.directory.iterdir() if path.suffix == _SUFFIX]
        return sorted(segments, key=lambda path: int(path.stem) if path.stem.isdigit() else -1)

    def replay(self) -> Iterator[bytes]:
        """Every intact record of every segment, oldest first. Call before :meth:`open`."""
        for path in list(self._segments):
            with path.open("rb") as segment:
                size = os.fstat(segment.fileno()).st_size
                offset = 0
                while offset < size:
                    header = segment.read(_HEADER.size)
                    length, checksum = _HEADER.unpack(header) if len(header) == _HEADER.size else (-1, 0)
                    # A length past the end of the file is a torn header: never read (or allocate) it.
                    fits = 0 <= length <= size - offset - _HEADER.size
                    record = segment.read(length) if fits else b""
                    if not fits or zlib.crc32(record) != checksum:
                        logger.warning(
                            "%s: a torn record at byte %d ends it (never acknowledged)", path, offset
                        )
                        break
                    yield record
                    offset += _HEADER.size + length

    def open(self, snapshot: Callable[[], Iterable[bytes]]) -> None:
        """Start a new active segment (never appending after a possibly torn tail) and the fsync thread.

        ``snapshot`` yields the store's content as records; compaction writes it (see :meth:`compact`).
        """
        self._snapshot = snapshot
        self._closed.clear()
        with self._lock:
            self._roll()
        self._fsync_thread = threading.Thread(
            target=self._fsync_loop, name="hoptrace-backend-log", daemon=True
        )
        self._fsync_thread.start()

    def _roll(self) -> None:
        """Close the active segment and start the next one (holding the lock)."""
        if self._fd >= 0:
            os.close(self._fd)
        last = int(self._segments[-1].stem) if self._segments and self._segments[-1].stem.isdigit() else 0
        self._active_number = last + 1
        path = self.directory / f"{self._active_number:012d}{_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._segments.append(path)

    def append(self, record: bytes) -> None:
        """Write ``record`` to the active segment; returns once the operating system holds it.

        Raises :class:`Unavailable` (nothing written) when the disk cannot keep up or fails.
        """
        if not self._lock.acquire(timeout=WRITE_WAIT_SECONDS):
            self._refuse()
            raise Unavailable(f"the request log in {self.directory} cannot keep up", retry_after_seconds=1)
        try:
            if self._fd < 0:
                raise Unavailable("the request log is closed", retry_after_seconds=1)
            if self._disk_bytes > self.max_bytes:
                self._refused += 1
                raise Unavailable(
                    f"the request log in {self.directory} is waiting for compaction", retry_after_seconds=1
                )
            header = _HEADER.pack(len(record), zlib.crc32(record))
            try:
                _write_all(self._fd, header, record)
            except OSError as exc:
                self._refused += 1
                self._undo_partial_write(exc)
                raise Unavailable(f"cannot write the request log: {exc}", retry_after_seconds=5) from exc
            self._appended_requests += 1
            self._appended_bytes += len(record)
            self._disk_bytes += len(header) + len(record)
            if self._disk_bytes > self.compact_bytes and not self._compacting:
                self._compacting = True
                self._compaction_thread = threading.Thread(
                    target=self._compact, name="hoptrace-backend-compaction", daemon=True
                )
                self._compaction_thread.start()
        finally:
            self._lock.release()

    def _refuse(self) -> None:
        with self._lock:
            self._refused += 1

    def _undo_partial_write(self, exc: OSError) -> None:
        # A short write left a torn record: start a new segment so that later records stay readable.
        logger.warning("request log write failed (%s); starting a new segment", exc)
        try:
            self._roll()
        except OSError:
            self._fd = -1

    def compact(self) -> None:
        """Replace every sealed segment by the records the ``snapshot`` given to :meth:`open` yields.

        The active segment is sealed first, and ``snapshot`` called after, holding no lock: every record
        in a sealed segment is already in the store it reads (the receiver stores before it logs).
        Blocks for the time it takes to write; started on a thread by :meth:`append` when needed.
        """
        with self._lock:
            if self._compacting:
                return
            self._compacting = True
        self._compact()

    def _compact(self) -> None:
        with self._lock:
            if self._fd < 0:
                self._compacting = False
                return
            self._roll()
            snapshot = self._snapshot
            sealed = self._segments[:-1]
            # The compacted segment takes the number of the last sealed one, so it replays first.
            target = sealed[-1]
        try:
            temporary = target.with_suffix(".tmp")
            written = 0
            with temporary.open("wb") as output:
                for record in snapshot():
                    output.write(_HEADER.pack(len(record), zlib.crc32(record)))
                    output.write(record)
                    written += _HEADER.size + len(record)
                output.flush()
                os.fsync(output.fileno())
            os.replace(temporary, target)
            for path in sealed[:-1]:
                path.unlink(missing_ok=True)
            _fsync_directory(self.directory)
            with self._lock:
                removed = sum(1 for path in self._segments if path in sealed[:-1])
                self._segments = [path for path in self._segments if path not in sealed[:-1]]
                self._disk_bytes = sum(path.stat().st_size for path in self._segments)
                self._compactions += 1
            logger.info("request log compacted: %d segments into one of %d bytes", removed + 1, written)
        except OSError:
            logger.exception("could not compact the request log in %s; it keeps growing", self.directory)
        finally:
            with self._lock:
                self._compacting = False

    def stats(self) -> LogStats:
        with self._lock:
            return LogStats(
                self._appended_requests,
                self._appended_bytes,
                self._refused,
                self._compactions,
                self._disk_bytes,
            )

    def close(self) -> None:
        """Flush the active segment to disk and stop. Idempotent."""
        self._closed.set()
        for thread in (self._fsync_thread, self._compaction_thread):
            if thread is not None:
                thread.join(timeout=30)
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.fsync(fd)
            os.close(fd)

    def _fsync_loop(self) -> None:
        while not self._closed.wait(FSYNC_INTERVAL_SECONDS):
            with self._lock:
                fd = os.dup(self._fd) if self._fd >= 0 else -1
            if fd >= 0:
                try:
                    os.fsync(fd)
                except OSError:
                    logger.exception("could not fsync the request log")
                finally:
                    os.close(fd)


def _write_all(fd: int, header: bytes, record: bytes) -> None:
    written = os.writev(fd, [header, record])
    if written != len(header) + len(record):
        raise OSError(f"short write: {written} of {len(header) + len(record)} bytes")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_records(store: TraceStore, spans_per_record: int = 1000) -> Iterator[bytes]:
    """The store's content as request records (``TracesData`` is wire-identical to an
    ``ExportTraceServiceRequest``), about ``spans_per_record`` spans each, least recently written first."""
    chunk: list[SpanRecord] = []
    for _, records in store.snapshot():
        chunk.extend(unique_records(records))
        if len(chunk) >= spans_per_record:
            yield traces_data(chunk).SerializeToString()
            chunk = []
    if chunk:
        yield traces_data(chunk).SerializeToString()
