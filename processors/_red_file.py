"""RED series kept in a file that all of a service's processes share, and the reading of such files.

A service run as several processes (uvicorn ``--workers``/``--reload``, gunicorn) serves one ``/metrics``
from one of them, so every process keeps its series in a file of its own in one directory, and the
serving process sums the files at scrape time. The files are memory-mapped: a count is in the kernel's page
cache the moment it is recorded, so a worker that is killed loses nothing it counted, and nothing needs
flushing. This is prometheus-client's multiprocess mode, which has no exemplars (and writes through a
dict of offsets and ``struct`` on every sample); hoptrace needs exemplars and a cheaper hot path, hence
this small format of its own.

File layout (native byte order, 8-byte cells; written by one process, read by any)::

    header  cell 0: magic, cell 1: bytes used, cell 2: spans that failed, cells 3-7: reserved
    entry   cell 0: length of the labels' JSON; the JSON, zero-padded to 8 bytes; then SERIES_CELLS cells

An entry's cells are laid out as :mod:`hoptrace.processors._red_store` says. A new entry is written whole
before ``bytes used`` covers it, so a reader never sees half an entry. Counts are single cells (no torn
reads); an exemplar is read again when its sequence number moved.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hoptrace.processors._red_store import SEQUENCE, SERIES_CELLS, Cells

logger = logging.getLogger(__name__)

_CELL = 8
_MAGIC = int.from_bytes(b"HOPRED01", "little")
_HEADER_CELLS = 8
_USED = 1
_FAILED = 2
_INITIAL_SIZE = 64 * 1024
SUFFIX = ".red"
"""The name ending of series files in a shared directory."""


class FileStore:
    """Series cells in ``<directory>/<pid>-<random>.red``, memory-mapped. Not thread-safe: the processor's
    lock guards it.

    Raises ``OSError`` when the file cannot be created or grown (a full disk: the processor then counts
    the span as failed). The file grows by doubling; cells handed out before a growth stay valid
    (earlier mappings of the same file are kept).
    """

    def __init__(self, directory: str) -> None:
        self.shared_directory = directory
        path = Path(directory) / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self.path = path
        self._mappings: list[mmap.mmap] = []
        self._size = 0
        self._grow(_INITIAL_SIZE)
        self._header[0] = _MAGIC
        self._header[_USED] = _HEADER_CELLS * _CELL

    def _grow(self, size: int) -> None:
        # Blocks reserved now: a full disk is an OSError here, not a SIGBUS on a later write to the map.
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(self._fd, 0, size)
        os.ftruncate(self._fd, size)
        mapping = mmap.mmap(self._fd, size)
        self._mappings.append(mapping)
        self._size = size
        self._view = memoryview(mapping)
        self._header = self._view[: _HEADER_CELLS * _CELL].cast("Q")

    def allocate(self, labels: Mapping[str, str]) -> Cells:
        encoded = json.dumps(dict(labels), separators=(",", ":")).encode()
        padded = -(-len(encoded) // _CELL) * _CELL
        start = self._header[_USED]
        cells_at = start + _CELL + padded
        end = cells_at + SERIES_CELLS * _CELL
        if end > self._size:
            self._grow(max(2 * self._size, end))
        self._view[start : start + _CELL].cast("Q")[0] = len(encoded)
        self._view[start + _CELL : start + _CELL + len(encoded)] = encoded
        self._header[_USED] = end  # published last: readers only look below it
        return self._view[cells_at:end].cast("Q")

    def add_failed(self, count: int = 1) -> int:
        self._header[_FAILED] += count
        return int(self._header[_FAILED])

    @property
    def failed(self) -> int:
        return int(self._header[_FAILED])


@dataclass
class SeriesCells:
    """One series as read from a store: its labels and a private copy of its cells."""

    labels: dict[str, str]
    cells: tuple[int, ...]


def read_directory(directory: str) -> tuple[list[SeriesCells], int]:
    """Read every series file in ``directory``: the series (one entry per file and label set) and the sum of
    spans that failed. A damaged file is skipped with a log line. A missing directory reads as empty."""
    series: list[SeriesCells] = []
    failed = 0
    try:
        paths = sorted(Path(directory).glob("*" + SUFFIX))
    except OSError:
        return series, failed
    for path in paths:
        try:
            failed += _read_file(path, series)
        except (OSError, ValueError) as exc:
            logger.warning("hoptrace: skipped RED metrics file %s (%s)", path, exc)
    return series, failed


def _read_file(path: Path, into: list[SeriesCells]) -> int:
    # Slicing an mmap copies into bytes: no buffer of the mapping outlives this function.
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < _HEADER_CELLS * _CELL:
            return 0  # just created
        with mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as mapping:
            header = _cells(mapping[: _HEADER_CELLS * _CELL])
            if header[0] != _MAGIC:
                raise ValueError("not a hoptrace RED metrics file")
            used = min(header[_USED], size)
            offset = _HEADER_CELLS * _CELL
            while offset + _CELL <= used:
                length = _cells(mapping[offset : offset + _CELL])[0]
                cells_at = offset + _CELL + -(-length // _CELL) * _CELL
                end = cells_at + SERIES_CELLS * _CELL
                if end > used:
                    raise ValueError(f"entry at byte {offset} runs past the used size {used}")
                labels = json.loads(mapping[offset + _CELL : offset + _CELL + length])
                if not isinstance(labels, dict):
                    raise ValueError(f"entry at byte {offset} has no labels")
                into.append(
                    SeriesCells({str(k): str(v) for k, v in labels.items()}, _stable(mapping, cells_at))
                )
                offset = end
    return int(header[_FAILED])


def _stable(mapping: mmap.mmap, at: int) -> tuple[int, ...]:
    """One series' cells, with an exemplar not caught half-written (re-read while its sequence moves)."""
    sequence = slice(at, at + _CELL)
    for _ in range(100):
        cells = _cells(mapping[at : at + SERIES_CELLS * _CELL])
        if cells[SEQUENCE] % 2 == 0 and _cells(mapping[sequence])[0] == cells[SEQUENCE]:
            break
    return cells  # after 100 tries, a writer died mid-exemplar: its counts are still right


def _cells(data: bytes) -> tuple[int, ...]:
    return tuple(memoryview(data).cast("Q"))
