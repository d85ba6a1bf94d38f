"""Helpers for tests that run processes under ``hoptrace run`` and wait for their spans in a backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from hoptrace.harness import ConditionTimeout, Span, poll_until
from hoptrace.harness.backend import EmbeddedBackend

HOPTRACE = str(Path(sys.executable).parent / "hoptrace")
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def traced_env(backend: EmbeddedBackend | None, protocol: str = "grpc", **extra: str) -> dict[str, str]:
    """The environment of a service under test: exports quickly to ``backend`` over ``protocol``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "HOPTRACE_")) and key != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(REPO)
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
    if backend is not None:
        endpoint = backend.otlp_grpc_endpoint if protocol == "grpc" else backend.otlp_http_endpoint
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env.update(extra)
    return env


def run_traced(code: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` through ``hoptrace run``; returns the finished process (never checks)."""
    return subprocess.run(
        [HOPTRACE, "run", "--", sys.executable, "-c", code],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_spans(backend: EmbeddedBackend, trace_id: str, count: int, timeout: float = 20.0) -> list[Span]:
    """Wait until ``backend`` holds at least ``count`` spans of ``trace_id``; return them all."""

    def probe() -> list[Span] | None:
        spans = backend.store.get_trace(trace_id)
        return spans if len(spans) >= count else None

    try:
        return poll_until(probe, timeout=timeout, what=f"{count} spans of trace {trace_id}")
    except ConditionTimeout:
        got = backend.store.get_trace(trace_id)
        raise AssertionError(
            f"trace {trace_id}: expected {count} spans, got {len(got)}: "
            + ", ".join(f"{span.service_name}:{span.name}({span.kind})" for span in got)
        ) from None


class TracedService:
    """A service process started through ``hoptrace run``, its output collected by a reader thread.

    Use as a context manager: the process is terminated (then killed) on exit, even when a test fails.
    """

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        self.name = name
        self._lines: list[str] = []
        self._process = subprocess.Popen(
            [HOPTRACE, "run", "--", *argv],
            env={**env, "OTEL_SERVICE_NAME": name},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self._lines)

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until a line of output matches ``pattern``; fail with the output if the process exits."""
        compiled = re.compile(pattern)

        def probe() -> re.Match[str] | None:
            for line in list(self._lines):
                match = compiled.search(line)
                if match:
                    return match
            if self._process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self._process.returncode}:\n{self.output()}")
            return None

        return poll_until(
            probe,
            timeout=timeout,
            what=f"{self.name} to print {pattern!r}",
            on_timeout=lambda: f"output of {self.name}:\n{self.output()}",
        )

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reader.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> TracedService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_uvicorn(name: str, app: str, env: Mapping[str, str], *extra: str) -> tuple[TracedService, str]:
    """Start ``uvicorn app`` on a free port under ``hoptrace run``; return it and its base URL once up."""
    service = TracedService(
        name, [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "0", *extra], env
    )
    try:
        match = service.wait_for_line(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
        service.wait_for_line(r"Application startup complete")
    except BaseException:
        service.stop()
        raise
    return service, match.group(1)
