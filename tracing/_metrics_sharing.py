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
OWNER_MARKER = "owner"
"""The file that holds the pid of the process that created the directory (and serves the port)."""
_PREFIX = "hoptrace-metrics-"


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
    processes, and remove it when this process exits. Raises ``OSError``.

    A process killed without running its exit handlers (SIGKILL, or SIGTERM without a handler) leaves its
    directory behind: directories whose creator is gone are removed here, before a new one is made."""
    remove_abandoned_directories(tempfile.gettempdir())
    directory = tempfile.mkdtemp(prefix=f"{_PREFIX}{port}-")
    (Path(directory) / OWNER_MARKER).write_text(str(os.getpid()))
    (Path(directory) / PORT_MARKER).write_text(port)
    os.environ[env.HOPTRACE_METRICS_DIR] = directory
    atexit.register(_remove, directory, os.getpid())
    return directory


def remove_abandoned_directories(parent: str) -> None:
    """Remove the directories hoptrace created in ``parent`` whose creating process no longer runs.
    Never raises."""
    try:
        entries = [entry for entry in os.scandir(parent) if entry.name.startswith(_PREFIX) and entry.is_dir()]
    except OSError:
        return
    for entry in entries:
        try:
            owner = int((Path(entry.path) / OWNER_MARKER).read_text())
        except (OSError, ValueError):
            continue  # not ours, or being created
        if not _running(owner):
            shutil.rmtree(entry.path, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it runs
        return True
    return True


def _remove(directory: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that runs exit handlers
        shutil.rmtree(directory, ignore_errors=True)
