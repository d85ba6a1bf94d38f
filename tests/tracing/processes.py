"""Helpers for tests that run processes under ``hoptrace run`` and wait for their spans in a backend."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from harness import Span
from harness.backend import EmbeddedBackend

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


def wait_until(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns a truthy value; raise ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)  # polling interval, not synchronisation: the loop re-checks the condition


def wait_for_spans(backend: EmbeddedBackend, trace_id: str, count: int, timeout: float = 20.0) -> list[Span]:
    """Wait until ``backend`` holds at least ``count`` spans of ``trace_id``; return them all."""

    def probe() -> list[Span] | None:
        spans = backend.store.get_trace(trace_id)
        return spans if len(spans) >= count else None

    try:
        return wait_until(probe, timeout, f"{count} spans of trace {trace_id}")
    except AssertionError:
        got = backend.store.get_trace(trace_id)
        raise AssertionError(
            f"trace {trace_id}: expected {count} spans, got {len(got)}: "
            + ", ".join(f"{span.service_name}:{span.name}({span.kind})" for span in got)
        ) from None
