"""Benchmark: how soon ``wait_for_trace`` returns after a trace's last span is exported; demo wall time.

Part 1. Three "services" in one child process (OpenTelemetry SDK, BatchSpanProcessor with the harness's
50 ms export delay, OTLP/gRPC) send a 7-span order trace to the embedded backend, itself a child process
(``hoptrace backend``). An exporter wrapper notes when the backend acknowledged the trace's last span.
We time from that moment to ``wait_for_trace`` returning (expectation: all 7 spans). Baseline, same run,
alternate iterations: a busy poller (1 ms) that returns the moment the complete trace is visible.
Goal: median <= 250 ms (Tracetest polls every 5 s).

Part 2. Wall time of ``hoptrace demo`` (backend, broker, three traced services, four asserted orders),
against the same three services started untraced and idle, in the same run.

Run: .venv/bin/python bench/harness_wait.py [--iterations 40] [--demo-runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from hoptrace.harness import TempoClient, open_backend, quiet_period_for, wait_for_trace
from hoptrace.harness.launch._services import DEFAULT_EXPORT_DELAY_MS, ServiceLauncher
from hoptrace.harness.launch._trace_client import new_trace_id

SPANS_PER_TRACE = 7


class _AckClock(SpanExporter):
    """Wraps an exporter; prints ``done TRACE_ID T`` once all spans of a trace are acknowledged, T being
    the ``time.monotonic()`` of the last acknowledgement (CLOCK_MONOTONIC is system-wide, so the parent can
    compare it with its own clock)."""

    counts: ClassVar[dict[str, int]] = {}  # shared by the three services' exporters
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        now = time.monotonic()
        with self.lock:
            for span in spans:
                trace_id = f"{span.context.trace_id:032x}"  # type: ignore[union-attr]
                self.counts[trace_id] = self.counts.get(trace_id, 0) + 1
                if self.counts[trace_id] == SPANS_PER_TRACE:
                    print(f"done {trace_id} {now}", flush=True)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def emitter(endpoint: str) -> None:
    """The "services" process: for each trace id read on stdin, emit one 7-span order trace."""
    from opentelemetry import context, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    tracers = {}
    for name in ("api", "worker", "inventory"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        exporter = _AckClock(OTLPSpanExporter(endpoint=endpoint, insecure=True))
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=DEFAULT_EXPORT_DELAY_MS)
        )
        tracers[name] = provider.get_tracer("bench")
    api, worker, inventory = tracers["api"], tracers["worker"], tracers["inventory"]
    print("ready", flush=True)
    for line in sys.stdin:
        trace_id = line.strip()
        parent = SpanContext(int(trace_id, 16), 0xAA, is_remote=True, trace_flags=TraceFlags(1))
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        with api.start_as_current_span("POST /orders", kind=SpanKind.SERVER):
            with api.start_as_current_span("GET", kind=SpanKind.CLIENT):
                inventory.start_span("GET /stock/{item}", kind=SpanKind.SERVER).end()
            with (
                api.start_as_current_span("publish orders", kind=SpanKind.PRODUCER),
                worker.start_as_current_span("process orders", kind=SpanKind.CONSUMER),
                worker.start_as_current_span("POST", kind=SpanKind.CLIENT),
            ):
                inventory.start_span("POST /reserve/{item}", kind=SpanKind.SERVER).end()
        context.detach(token)


def _busy_poll(client: TempoClient, trace_id: str) -> None:
    while len(client.get_trace(trace_id) or []) < SPANS_PER_TRACE:
        time.sleep(0.001)  # the baseline: poll as fast as is reasonable


def measure_wait(iterations: int) -> tuple[list[float], list[float]]:
    """Backend and "services" each in their own process, as in a real run; the waiter here."""
    waited: list[float] = []
    floor: list[float] = []
    with open_backend("embedded", subprocess_mode=True) as backend, TempoClient(backend.tempo_url) as client:
        command = [sys.executable, __file__, "--emit", backend.otlp_grpc_endpoint]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as services:
            assert services.stdin is not None and services.stdout is not None
            assert services.stdout.readline().strip() == "ready"
            for i in range(iterations * 2):
                trace_id = new_trace_id()
                if i % 2:
                    services.stdin.write(trace_id + "\n")
                    services.stdin.flush()
                    _busy_poll(client, trace_id)
                else:
                    services.stdin.write(trace_id + "\n")
                    services.stdin.flush()
                    wait_for_trace(client, trace_id, until=lambda t: len(t) == SPANS_PER_TRACE, timeout=30)
                returned = time.monotonic()
                _, done_id, acked = services.stdout.readline().split()
                assert done_id == trace_id, (done_id, trace_id)
                (floor if i % 2 else waited).append((returned - float(acked)) * 1000)
            services.stdin.close()
    return waited, floor


def measure_demo(runs: int) -> tuple[list[float], list[float]]:
    hoptrace = str(Path(sys.executable).parent / "hoptrace")
    demo_times: list[float] = []
    bare_times: list[float] = []
    for _ in range(runs):
        start = time.monotonic()
        result = subprocess.run([hoptrace, "demo"], capture_output=True, text=True, timeout=300)
        demo_times.append(time.monotonic() - start)
        if result.returncode != 0:
            raise SystemExit(f"hoptrace demo failed:\n{result.stdout}\n{result.stderr}")
        start = time.monotonic()
        with ServiceLauncher("http://127.0.0.1:9") as launcher:
            env = {"DEMO_INVENTORY_URL": "http://127.0.0.1:9", "DEMO_QUEUE": f"bench-{time.time_ns()}"}
            launcher.start_asgi("inventory", "hoptrace.harness.demo.inventory:app", traced=False)
            launcher.start(
                "worker",
                [sys.executable, "-m", "hoptrace.harness.demo.worker"],
                ready_log="worker ready",
                env=env,
                traced=False,
            )
            launcher.start_asgi("api", "hoptrace.harness.demo.api:app", env=env, traced=False)
        bare_times.append(time.monotonic() - start)
    return demo_times, bare_times


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--demo-runs", type=int, default=3)
    parser.add_argument("--emit", metavar="OTLP_ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit:
        emitter(args.emit)
        return
    waited, floor = measure_wait(args.iterations)
    med, base = statistics.median(waited), statistics.median(floor)
    quiet = 1000 * quiet_period_for(DEFAULT_EXPORT_DELAY_MS)
    print(
        f"wait_for_trace after last span exported: median {med:.0f} ms, p90 {_p(waited, 0.9):.0f} ms "
        f"(goal median <= 250 ms; quiet period {quiet:.0f} ms by design)"
    )
    print(
        f"  baseline, busy 1 ms poller seeing the complete trace: median {base:.1f} ms; "
        f"ratio {med / max(base, 0.001):.0f}x; wait minus floor {med - base:.0f} ms"
    )
    if args.demo_runs:
        demo_times, bare_times = measure_demo(args.demo_runs)
        d, b = statistics.median(demo_times), statistics.median(bare_times)
        print(
            f"hoptrace demo wall time: median {d:.2f} s over {args.demo_runs} runs; "
            f"baseline, its three services started untraced and idle: {b:.2f} s; ratio {d / b:.2f}x"
        )


if __name__ == "__main__":
    main()
