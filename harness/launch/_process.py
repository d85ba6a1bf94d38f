"""A child process in its own session, with its output captured to a file, and a readiness wait.

Everything the harness starts (services, brokers, backends) goes through ``ManagedProcess`` so that:
the whole process group is stopped (SIGTERM, then SIGKILL) even when a test fails; output never blocks on
a full pipe; and a failure can quote the process's log. An ``atexit`` hook stops anything still running,
and on Linux a child gets SIGTERM if the harness's process dies without running it (SIGKILL, SIGTERM).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hoptrace.harness._errors import ServiceFailedToStart
from hoptrace.harness._polling import polling

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
        executable = self.command[0]
        if os.sep in executable and cwd is not None:
            executable = os.path.join(cwd, executable)
        if shutil.which(executable, path=(env or os.environ).get("PATH")) is None:  # setpriv: only exit 127
            raise ServiceFailedToStart(f"{name}: cannot run {' '.join(self.command)}: no such executable")
        self._log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [*_DIE_WITH_PARENT, *self.command],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            raise ServiceFailedToStart(f"{name}: cannot run {' '.join(self.command)}: {exc}") from exc
        with _LIVE_LOCK:
            _LIVE.add(self)
        _wait_past_setpriv(self.process)

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


# Services get SIGTERM when the harness's process dies, even by SIGKILL: atexit does not run then, and
# services live in their own session, so they would outlive a killed test run. util-linux's setpriv asks
# Linux for it (prctl PR_SET_PDEATHSIG, kept across exec) and then execs the command. Not a preexec_fn:
# Python code between fork and exec in a process running gRPC threads (the embedded backend) can crash
# the child (seen: SIGABRT from gRPC's fork handlers). The signal follows the thread that started the
# child: start services from a long-lived thread (the main thread, as pytest fixtures do).
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = [_SETPRIV, "--pdeathsig", "TERM", "--"] if _SETPRIV else []


def _wait_past_setpriv(process: subprocess.Popen[bytes]) -> None:
    # setpriv asks for the signal after Popen returns; a harness killed in between would leave the service
    # orphaned for good. Once setpriv has exec'd the command, the request is in place (it takes ~1 ms).
    if not _SETPRIV:
        return
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    for _ in polling(timeout=5.0, first=0.0005, ceiling=0.01):
        with contextlib.suppress(OSError):
            running = cmdline.read_bytes()  # empty while an exec is under way
            if running and not running.startswith(_SETPRIV.encode() + b"\0"):
                return
        if process.poll() is not None:
            return


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@atexit.register
def _stop_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for process in leftovers:
        process.stop(timeout=2.0)
