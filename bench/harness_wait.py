"""Benchmark: how soon ``wait_for_trace(response)`` (no ``until=``) returns after a trace's last span ends,
and how often it returns a partial trace; also ``hoptrace demo``'s wall time.

Part 1. ``--shops`` fresh demo shops (api, an httpx hop to the inventory, a RabbitMQ worker whose first
message is deliberately slow: ``--first-delay-ms`` after it is queued), each started anew under ``hoptrace
run`` and reporting its spans as they start, with ``--waits`` orders each. For every order we time from the
end of the trace's last span (the latest span end time, wall clock) to ``wait_for_trace`` returning, and
count the traces that came back partial (not the 7 spans and both chains). A busy process loads one CPU
meanwhile (``--no-busy`` to skip). Baseline, same run: ``--baseline-shops`` more fresh shops waited for by
the old rule, a quiet period of 1.5 export delays + 20 ms (what the harness does against real Tempo, which
keeps no open-span reports). Goals: median <= 100 ms, p99 <= 250 ms, 0 partial.

Part 2. ``hoptrace check --traceparent ... --expect-propagation`` (timeout 10 s) on a complete trace of the
first shops: with the caller's real span id (passes) and with a wrong one (broken: must fail fast, not after
the timeout); wall time of each command.

Part 3. Wall time of ``hoptrace demo`` against the same three services started untraced and idle.

Run: .venv/bin/python bench/harness_wait.py [--shops 50] [--waits 6] [--baseline-shops 10] [--demo-runs 1]
(the full run, 300 waits, takes about five minutes on a loaded 2-core machine).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hoptrace.harness import (
    OpenSpan,
    Service,
    ServiceLauncher,
    TempoClient,
    Trace,
    TraceClient,
    open_backend,
    start_rabbitmq,
    wait_for_trace,
)
from hoptrace.harness.demo import HTTP_CHAIN, QUEUE_CHAIN, SPANS_PER_ORDER, start_demo_shop


class QuietRuleClient(TempoClient):
    """A client that sees no open-span reports, as against real Tempo: waits fall back to the quiet rule."""

    def started_spans(self, trace_id: str) -> list[OpenSpan] | None:
        return None


def is_complete(trace: Trace) -> bool:
    if len(trace) != SPANS_PER_ORDER:
        return False
    try:
        trace.assert_chain(HTTP_CHAIN).assert_chain(QUEUE_CHAIN)
    except AssertionError:
        return False
    return True


HOPTRACE = str(Path(sys.executable).parent / "hoptrace")
CHECKS: dict[str, list[float]] = {"passing": [], "broken": []}
"""Wall seconds of ``hoptrace check`` runs, filled by :func:`run_shops`."""


def time_checks(tempo_url: str, trace_id: str, caller: str) -> None:
    """Run ``hoptrace check`` with the right and a wrong caller span id; record their wall times."""
    for kind, span_id, expected in (("passing", caller, 0), ("broken", "00000000000000bb", 1)):
        start = time.monotonic()
        traceparent = f"00-{trace_id}-{span_id}-01"
        result = subprocess.run(
            [
                HOPTRACE,
                "check",
                "--tempo-url",
                tempo_url,
                "--traceparent",
                traceparent,
                "--expect-propagation",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        CHECKS[kind].append(time.monotonic() - start)
        if result.returncode != expected:
            raise SystemExit(f"hoptrace check ({kind}) exited {result.returncode}:\n{result.stdout}")


def run_shops(shops: int, waits: int, first_delay_ms: int, facts: bool) -> tuple[list[float], int, int]:
    """Start ``shops`` fresh shops, ``waits`` orders each; returns (ms after last end, partial, traces)."""
    after_end: list[float] = []
    partial = 0
    client_class = TempoClient if facts else QuietRuleClient
    with (
        open_backend() as backend,
        start_rabbitmq() as broker,
        client_class(backend.tempo_url) as tempo,
        TraceClient() as client,
    ):
        for number in range(shops):
            with ServiceLauncher(
                backend.otlp_grpc_endpoint, open_spans_url=backend.open_spans_url
            ) as launcher:
                shop = start_demo_shop(
                    launcher, broker.url, broker.unique_name("orders"), first_message_delay_ms=first_delay_ms
                )
                services: tuple[Service, ...] = shop.services if facts else ()
                for _ in range(waits):
                    response = client.post(f"{shop.api.url}/orders", json={"item": "widget"}, tenant="acme")
                    assert response.status_code == 202, response.response.text
                    trace = wait_for_trace(
                        tempo,
                        response.trace_id,
                        entry_span_id=response.entry_span_id,
                        services=services,
                        timeout=30,
                    )
                    returned = time.time_ns()
                    after_end.append((returned - max(s.end_time_unix_nano for s in trace)) / 1e6)
                    partial += not is_complete(trace)
                if facts and number < 3:
                    time_checks(backend.tempo_url, response.trace_id, response.entry_span_id)
                launcher.stop_all()
            launcher.remove_logs()
            print(
                f"  {'facts' if facts else 'quiet'} shop {number + 1}/{shops}: {partial} partial so far",
                flush=True,
            )
    return after_end, partial, len(after_end)


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
        launcher.remove_logs()
        bare_times.append(time.monotonic() - start)
    return demo_times, bare_times


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def _line(name: str, values: list[float], partial: int, total: int) -> str:
    return (
        f"{name}: median {statistics.median(values):.0f} ms, p99 {_p(values, 0.99):.0f} ms, "
        f"max {max(values):.0f} ms; partial traces {partial} of {total}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shops", type=int, default=50)
    parser.add_argument("--waits", type=int, default=6, help="orders (waits) per shop")
    parser.add_argument("--baseline-shops", type=int, default=10)
    parser.add_argument("--first-delay-ms", type=int, default=400)
    parser.add_argument("--no-busy", action="store_true", help="do not load a CPU with a busy process")
    parser.add_argument("--demo-runs", type=int, default=1)
    args = parser.parse_args()
    busy = None if args.no_busy else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        facts, facts_partial, facts_total = run_shops(args.shops, args.waits, args.first_delay_ms, True)
        quiet, quiet_partial, quiet_total = run_shops(
            args.baseline_shops, args.waits, args.first_delay_ms, False
        )
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    load = "no busy process" if args.no_busy else "one CPU kept busy"
    print(f"wait_for_trace(response) without until=, {args.first_delay_ms} ms slow first message, {load}:")
    print("  " + _line("facts (open-span reports)", facts, facts_partial, facts_total))
    print("    goals: median <= 100 ms, p99 <= 250 ms, 0 partial")
    if quiet:
        print(
            "  "
            + _line("baseline, quiet-period rule (as with real Tempo)", quiet, quiet_partial, quiet_total)
        )
        ratio = statistics.median(facts) / max(statistics.median(quiet), 0.001)
        print(f"  median ratio facts / quiet rule: {ratio:.2f}x")
    if CHECKS["broken"]:
        good, bad = statistics.median(CHECKS["passing"]), statistics.median(CHECKS["broken"])
        print(
            f"hoptrace check --expect-propagation (--timeout 10) on a complete trace: broken (wrong caller) "
            f"exits 1 after {bad:.2f} s; passing (the caller's span) exits 0 after {good:.2f} s; "
            f"ratio {bad / good:.2f}x (median of {len(CHECKS['broken'])})"
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
