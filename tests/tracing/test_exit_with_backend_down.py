"""A traced service whose OTLP backend is down still exits promptly on SIGTERM, and says once that the spans
it could not send are lost.

Before, the SDK's batch processor joined its worker while the worker was in the exporter's retry loop, so a
service waited out the retries (~6.8 s with the default 10 s export timeout). The exporter timeout here is
30 s, so waiting out the retries (back-off 1 + 2 + 4 + 8 s) cannot pass for a prompt exit.
"""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import IO

import httpx
import pytest

from hoptrace.tracing._otlp.final_exports import EXIT_EXPORT_BUDGET_SECONDS
from tests.tracing.processes import HOPTRACE, traced_env

EXIT_SLACK_SECONDS = 3.0
"""What the interpreter may take to exit on a loaded machine, on top of the export budget."""
EXIT_BOUND_SECONDS = EXIT_EXPORT_BUDGET_SECONDS + EXIT_SLACK_SECONDS


def _closed_port_endpoint() -> dict[str, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once the probe is closed
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_TIMEOUT": "30"}


class Lines:
    """The lines of a process's stream, read on a daemon thread, so that a test can wait for one with a
    timeout, and read them all once the process has exited."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def all(self) -> str:
        """Every line, once the stream has ended (the process exited)."""
        self._reader.join(timeout=30)
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return "".join(self.seen)


def _exit_seconds(process: subprocess.Popen[str]) -> float:
    """Send SIGTERM and return how long ``process`` took to exit (fails past :data:`EXIT_BOUND_SECONDS`)."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=EXIT_BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_BOUND_SECONDS} s after SIGTERM with the backend down")
    return time.monotonic() - sent


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_uvicorn_service_exits_promptly_on_sigterm_with_its_backend_down(protocol: str) -> None:
    env = traced_env(None, protocol, **_closed_port_endpoint())
    command = [HOPTRACE, "run", "--", sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "0"]
    command.append("hoptrace.harness.demo.inventory:app")
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            stderr = Lines(process.stderr)
            url = stderr.wait_for(r"Uvicorn running on (http://\S+)")[1]
            assert httpx.get(f"{url}/stock/widget", timeout=30).status_code == 200  # one span to send
            _exit_seconds(process)  # uvicorn shuts down, then re-raises SIGTERM to hoptrace's handler
        finally:
            process.kill()
    assert len(re.findall(r"hoptrace: dropped \d+ span\(s\)", stderr.all())) == 1, stderr.all()


def test_a_script_exits_promptly_on_sigterm_while_its_export_is_retrying() -> None:
    """No handler of its own: hoptrace's SIGTERM handler shuts the provider down, abandoning the back-off
    of the export in progress (the script waits until the exporter has failed once, so it is retrying)."""
    code = textwrap.dedent(
        """
        import threading
        from opentelemetry import trace
        import hoptrace.tracing
        with trace.get_tracer("t").start_as_current_span("work"):
            pass
        done = threading.Event()
        while hoptrace.tracing.counts().get("exporter_log_records", 0) < 1:  # a failed attempt: retrying
            done.wait(0.05)
        print("retrying", flush=True)
        done.wait(120)
        """
    )
    env = traced_env(None, "http/protobuf", **_closed_port_endpoint())
    command = [HOPTRACE, "run", "--", sys.executable, "-c", code]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            stderr = Lines(process.stderr)
            assert Lines(process.stdout).wait_for("retrying")
            _exit_seconds(process)
            assert process.returncode == -signal.SIGTERM  # the exit status stays "killed by SIGTERM"
        finally:
            process.kill()
    assert len(re.findall(r"hoptrace: dropped \d+ span\(s\)", stderr.all())) == 1, stderr.all()
