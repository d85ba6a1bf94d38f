"""Log a warning about request content once, then count it, so that no client can flood the log.

:func:`log_once` installs a filter on the loggers that write about what clients send or do (uvicorn's
"Invalid HTTP request received." and errors in request handlers, asyncio's failed ``accept`` under a
connection flood): the first record of each message template passes, later ones are counted in
:func:`suppressed` (exposed on ``/metrics``). Process-wide and thread safe.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

LOGGERS = ("asyncio", "uvicorn.error")
"""Loggers whose records are about clients' requests and connections."""


SUPPRESSED_METRIC = "hoptrace_backend_log_suppressed_total"


class _OncePerMessage(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.seen: set[tuple[str, str]] = set()
        self.suppressed: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        with self._lock:
            if key not in self.seen:
                self.seen.add(key)
                record.msg = f"{record.msg} (logged once; repeats are counted in {SUPPRESSED_METRIC})"
                return True
            self.suppressed[record.name] += 1
        return False


_FILTER = _OncePerMessage()
_installed = threading.Lock()


def log_once() -> None:
    """Install the filter (idempotent). The first record of each message passes, saying where repeats
    are counted."""
    with _installed:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)


def suppressed() -> dict[str, int]:
    """Records not logged because their message was logged before, by logger name."""
    with _FILTER._lock:
        return dict(_FILTER.suppressed)
