"""Helpers for tests that run one-shot ``python -c`` programs under ``hoptrace run`` and wait for their
spans in a backend. Long-running services are started with the harness's ``ServiceLauncher``."""

from __future__ import annotations

import os
import subprocess
import sys
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
