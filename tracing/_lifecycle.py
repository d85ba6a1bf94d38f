"""Flushing queued spans when the process ends.

At normal exit the SDK's ``TracerProvider`` shuts down (and flushes) from ``atexit``. SIGTERM's default
action kills the process without running ``atexit``, so while nobody else handles SIGTERM, hoptrace
installs a handler that shuts the provider down (which exports what is queued), then restores the default
action and re-raises the signal: the exit status stays "killed by SIGTERM". A server that installs its own
handler (uvicorn does) replaces this one and exits normally, which shuts down through ``atexit``. Either
way the export at exit is prompt when the backend is down: one attempt per batch, within a budget
(:mod:`hoptrace.tracing._otlp.final_exports`).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from opentelemetry.sdk.trace import TracerProvider


def flush_on_sigterm(provider: TracerProvider) -> None:
    """Install the flushing SIGTERM handler if SIGTERM still has its default action. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        try:
            provider.shutdown()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
