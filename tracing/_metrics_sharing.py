"""One ``/metrics`` for a service of several processes: the one that binds the port serves the sum of all.

uvicorn ``--workers``/``--reload`` and gunicorn start the bootstrap in a supervisor first, and it binds
``HOPTRACE_METRICS_PORT`` before any worker exists. So the process that binds the port creates a private
directory, puts its path in ``HOPTRACE_METRICS_DIR`` for its children (spawned workers inherit the
environment; forked ones inherit the processor, which moves to a file of its own at fork), and serves the
sum of the directory (``RedMetricsSpanProcessor.share_in``). A worker finds the directory in its
environment, shares in it, and leaves the port to its parent. A ``port`` file in the directory names the
port it belongs to, so an unrelated service started from a traced process with a port of its own does not
join.

Chosen over a collector in the supervisor (workers pushing to it): a killed worker loses nothing, the
hot path makes no system call, and no process depends on another to record.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hoptrace.tracing import environment_variables as env

PORT_MARKER = "port"
"""The file, in a directory hoptrace created, that holds the metrics port the directory belongs to."""


def inherited_directory(environ: Mapping[str, str], port: str) -> str | None:
    """The shared directory this process must join for ``port``, from ``HOPTRACE_METRICS_DIR``, or ``None``.

    A directory without a port marker was set by the user: it is joined whatever the port."""
    directory = environ.get(env.HOPTRACE_METRICS_DIR, "").strip()
    if not directory:
        return None
    try:
        recorded = (Path(directory) / PORT_MARKER).read_text().strip()
    except FileNotFoundError:
        return directory
    except OSError:
        return None
    return directory if recorded == port else None


def create_directory(port: str) -> str:
    """Create the private directory of the service serving ``port``, name it in ``os.environ`` for child
    processes, and remove it when this process exits. Raises ``OSError``."""
    directory = tempfile.mkdtemp(prefix=f"hoptrace-metrics-{port}-")
    (Path(directory) / PORT_MARKER).write_text(port)
    os.environ[env.HOPTRACE_METRICS_DIR] = directory
    atexit.register(_remove, directory, os.getpid())
    return directory


def _remove(directory: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that runs exit handlers
        shutil.rmtree(directory, ignore_errors=True)
