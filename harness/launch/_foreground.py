"""Staying in the foreground until SIGINT or SIGTERM: ``hoptrace backend``, ``hoptrace demo --keep`` and
the plugin's ``--hoptrace-keep`` all wait this way.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """Yield an event that SIGINT or SIGTERM sets; restore the previous handlers on exit. Main thread only."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until_stopped(stop: threading.Event) -> None:
    """Block until ``stop`` is set.

    It waits in short slices rather than once: the kernel may hand the signal to another of the process's
    threads (gRPC's, uvicorn's), which does not interrupt a main thread blocked in an untimed wait, and the
    Python handler runs only when the main thread executes bytecode again.
    """
    while not stop.wait(0.2):
        pass


def run_until_stop_signal() -> None:
    """Block until SIGINT or SIGTERM arrives. Main thread only."""
    with stop_signals() as stop:
        wait_until_stopped(stop)
