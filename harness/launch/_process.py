"""A child process in its own session, with its output captured to a file, and a readiness wait.

Everything the harness starts (services, brokers, backends) goes through ``ManagedProcess`` so that:
the whole process group is stopped (SIGTERM, then SIGKILL) even when a test fails; output never blocks on
a full pipe; and a failure can quote the process's log. An ``atexit`` hook stops anything still running,
and on Linux a child gets SIGTERM if the harness's process dies without running it (SIGKILL, SIGTERM).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hoptrace.harness._errors import ServiceFailedToStart
from hoptrace.harness._polling import polling

_PR_SET_PDEATHSIG = 1
_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


class ManagedProcess:
    """Start ``command`` now; stop it (and its children) with ``stop()``. Not thread-safe per instance."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_dir: str | Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        directory = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hoptrace-logs-"))
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"
        self._log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._log.close()
            raise ServiceFailedToStart(f"{name}: cannot run {' '.join(self.command)}: {exc}") from exc
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self, tail_lines: int | None = None) -> str:
        """The captured output so far (its last ``tail_lines`` lines if given)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if tail_lines is None else "\n".join(text.splitlines()[-tail_lines:])

    def wait_ready(
        self,
        probe: Callable[[], bool],
        *,
        what: str,
        timeout: float,
    ) -> None:
        """Poll ``probe`` with backoff until it returns ``True``.

        Raises ``ServiceFailedToStart``, quoting the log, if the process exits first or ``timeout`` passes."""
        for _ in polling(timeout, ceiling=0.2):
            if probe():
                return
            if not self.running():
                self._fail(f"exited with code {self.process.returncode} before {what}")
        self._fail(f"was not ready ({what}) after {timeout:.0f} s")

    def wait_for_log(self, pattern: str | re.Pattern[str], *, timeout: float) -> re.Match[str]:
        """Wait until a line of output matches ``pattern``; returns the match."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def probe() -> bool:
            match = regex.search(self.log())
            if match:
                found.append(match)
            return match is not None

        self.wait_ready(probe, what=f"log line matching {regex.pattern!r}", timeout=timeout)
        return found[0]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after ``timeout``. Idempotent."""
        try:
            if self.running():
                _signal_group(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout)
            # Children that outlived their parent (the group keeps the leader's pid).
            _signal_group(self.process.pid, signal.SIGKILL)
        finally:
            self._log.close()
            with _LIVE_LOCK:
                _LIVE.discard(self)

    def _fail(self, what: str) -> None:
        self.stop()
        raise ServiceFailedToStart(
            f"{self.name} {what}.\ncommand: {' '.join(self.command)}\n"
            f"--- last lines of its log ({self.log_path}) ---\n{self.log(60)}"
        )


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies, even by SIGKILL.

    atexit does not run when the harness's process is killed, and services live in their own session, so
    without this they would outlive a killed test run. The signal follows the thread that started the
    child: start services from a long-lived thread (the main thread, as pytest fixtures do)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@atexit.register
def _stop_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for process in leftovers:
        process.stop(timeout=2.0)
