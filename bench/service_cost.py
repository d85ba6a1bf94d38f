"""CPU per traced request across real services: bare, ``hoptrace run`` and ``opentelemetry-instrument``.

Four services with no tracing code run as their own processes (uvicorn, aio-pika, RabbitMQ): the demo's
Starlette ``api`` edge checks stock at ``inventory`` over httpx and publishes the order; a
``queue.iterator()`` worker (``bench/cost_services.py``) reserves it at ``inventory`` and publishes it
again; a callback consumer takes it. That is 9 spans per request when traced. Four clients post orders
concurrently (the edge turns ``X-Tenant-ID`` into baggage under hoptrace); spans go over OTLP/HTTP to the
embedded backend, run as its own process.

Every variant's services run side by side, each with its own queues, and each round drives all variants AT
ONCE (the same number of requests each), so that whatever else loads this shared machine loads them alike.
A variant's CPU is the utime+stime of its service processes (``/proc/PID/stat``) from just before the round
until its work has settled: every message consumed and no CPU used for 1.5 s (longer than the export delay,
so the last batch has been exported). Tracing's share is a variant's CPU over bare's in the same round; the
table gives medians over rounds (and the range of the share), and the spans the backend received per
request.

Latency is the client's, one request at a time (no queueing behind other clients), interleaved: each sample
sends one request to every variant, in a shuffled order, so the machine's other load (which swings by tens
of milliseconds here) hits every variant alike. A variant's added latency is its p50 (p99) minus bare's.
First requests are measured the same way on the freshly started services, before any warm-up (the 1st
request and the p50 of the first ``--first-requests``): they pay whatever is set up lazily; the warm
samples come after the warm-up. Variants: hoptrace with its defaults, hoptrace with one feature switched
off, and ``opentelemetry-instrument`` (``opentelemetry-distro`` and upstream's starlette, httpx and aio-pika
instrumentations: the ``bench`` extra). Goals: hoptrace's share <= 0.35x upstream's; the warm p50 latency
it adds <= 0.5x upstream's.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/service_cost.py [--requests 150] [--rounds 5] [--latency-requests 150]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hoptrace.harness import ServiceLauncher, open_backend, start_rabbitmq

BIN = Path(sys.executable).parent
SERVICES = Path(__file__).resolve().parent / "cost_services.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
EXPORT_DELAY_MS = 1000
"""``OTEL_BSP_SCHEDULE_DELAY`` of every traced variant: batches like a busy service's, a short settle."""
SETTLE_SECONDS = 1.5
CLIENTS = 4
ORDER = {"item": "widget", "quantity": 1}
LOGGING_OFF = {"HOPTRACE_LOG_CORRELATION": "false"}

# name -> (how the services run, extra environment)
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "bare (no tracing)": ("bare", {}),
    "hoptrace run (defaults)": ("hoptrace", {}),
    "  HOPTRACE_REDACTION=false": ("hoptrace", {"HOPTRACE_REDACTION": "false"}),
    "  HOPTRACE_RED_METRICS=false": ("hoptrace", {"HOPTRACE_RED_METRICS": "false"}),
    "  HOPTRACE_LOG_CORRELATION=false": ("hoptrace", LOGGING_OFF),
    "opentelemetry-instrument": ("upstream", {}),
}


@dataclass
class Stack:
    """One variant's four running services."""

    api_url: str
    pids: list[int]
    consumer_log: Path
    consumed: int = 0
    cpu_per_request: list[float] = field(default_factory=list)
    spans_per_request: float = 0.0
    latencies: list[float] = field(default_factory=list)
    """Warm: after the warm-up."""
    first_latencies: list[float] = field(default_factory=list)
    """The first requests the fresh services served."""


def start_stack(
    launcher: ServiceLauncher, name: str, how: str, extra: dict[str, str], broker_url: str
) -> Stack:
    tag = f"{len(launcher.services) // 4}"
    env = {
        **extra,
        "AMQP_URL": broker_url,
        "DEMO_QUEUE": f"cost-orders-{tag}-{os.getpid()}",
        "DEMO_NEXT_QUEUE": f"cost-shipped-{tag}-{os.getpid()}",
    }
    traced = how == "hoptrace"
    prefix = [str(BIN / "opentelemetry-instrument")] if how == "upstream" else []

    def run(service: str, command: list[str], ready: str, more: dict[str, str] | None = None) -> int:
        started = launcher.start(
            f"{tag}-{service}",
            [*prefix, *command],
            ready_log=ready,
            env={**env, **(more or {})},
            traced=traced,
        )
        env.setdefault("DEMO_INVENTORY_URL", started.url or "")
        return started.process.pid

    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "0", "--no-access-log"]
    ready = r"Uvicorn running on (?P<url>http://[^:\s]+:(?P<port>\d+))"
    pids = [run("inventory", [*uvicorn, "hoptrace.harness.demo.inventory:app"], ready)]
    pids.append(run("worker", [sys.executable, str(SERVICES), "worker"], "worker ready"))
    pids.append(run("consumer", [sys.executable, str(SERVICES), "consumer"], "consumer ready"))
    edge = {"HOPTRACE_TENANT_HEADER": "X-Tenant-ID"}
    api = run("api", [*uvicorn, "hoptrace.harness.demo.api:app"], ready, edge)
    pids.append(api)
    consumer = launcher.services[-2]
    print(f"started {name.strip()}", file=sys.stderr)
    return Stack(launcher.services[-1].url or "", pids, consumer.process.log_path)


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` and their live descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                text = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, list(pids)
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += int(stats[pid][11]) + int(stats[pid][12])
        todo.extend(children.get(pid, []))
    return total / CLK_TCK


async def drive(url: str, requests: int) -> list[float]:
    """Post ``requests`` orders from ``CLIENTS`` concurrent clients; return each latency in seconds."""
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def client(tenant: str) -> None:
        async with httpx.AsyncClient(base_url=url, headers={"X-Tenant-ID": tenant}, timeout=30) as http:
            for _ in remaining:
                started = time.perf_counter()
                response = await http.post("/orders", json=ORDER)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

    await asyncio.gather(*(client(f"tenant{i}") for i in range(CLIENTS)))
    return latencies


def settle(stack: Stack, expected: int, timeout: float = 60.0) -> None:
    """Block until ``expected`` messages were consumed and the services used no CPU for SETTLE_SECONDS."""
    deadline = time.monotonic() + timeout
    last, quiet_since = cpu_seconds(stack.pids), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(stack.pids)
        if now != last:
            last, quiet_since = now, time.monotonic()
        if time.monotonic() - quiet_since >= SETTLE_SECONDS and consumed(stack) >= expected:
            return
    raise RuntimeError(f"work did not settle: {consumed(stack)} of {expected} messages consumed")


def consumed(stack: Stack) -> int:
    return stack.consumer_log.read_bytes().count(b"done\n")


def spans_received(tempo_url: str) -> int:
    """The embedded backend's count of spans received (all variants: only one is driven at a time)."""
    for line in httpx.get(f"{tempo_url}/metrics").text.splitlines():
        if line.startswith("hoptrace_backend_spans_received_total"):
            return int(float(line.split()[-1]))
    return 0


def drive_alone(stack: Stack, requests: int, tempo_url: str) -> None:
    """Drive ``stack`` alone (no other variant runs); record the spans the backend received per request."""
    spans = spans_received(tempo_url)
    asyncio.run(drive(stack.api_url, requests))
    stack.consumed += requests
    settle(stack, stack.consumed)
    stack.spans_per_request = (spans_received(tempo_url) - spans) / requests


async def interleaved_latencies(stacks: list[Stack], samples: int, seed: int) -> list[list[float]]:
    """Each stack's latency (seconds) of ``samples`` requests sent one at a time, interleaved: every sample
    sends one request to each stack, in a shuffled order. Each stack keeps one client connection."""
    order = random.Random(seed)
    latencies: list[list[float]] = [[] for _ in stacks]
    async with contextlib.AsyncExitStack() as clients_open:
        clients = [
            await clients_open.enter_async_context(
                httpx.AsyncClient(base_url=stack.api_url, headers={"X-Tenant-ID": "tenant0"}, timeout=30)
            )
            for stack in stacks
        ]
        for _ in range(samples):
            for index in order.sample(range(len(stacks)), len(stacks)):
                started = time.perf_counter()
                response = await clients[index].post("/orders", json=ORDER)
                latencies[index].append(time.perf_counter() - started)
                response.raise_for_status()
    for stack in stacks:
        stack.consumed += samples
    for stack in stacks:
        settle(stack, stack.consumed)
    return latencies


async def _drive_all(stacks: list[Stack], requests: int) -> list[list[float]]:
    return await asyncio.gather(*(drive(stack.api_url, requests) for stack in stacks))


def measure_round(stacks: list[Stack], requests: int) -> None:
    """Drive every variant at once, so that whatever else loads the machine loads them all alike."""
    before = [cpu_seconds(stack.pids) for stack in stacks]
    asyncio.run(_drive_all(stacks, requests))
    for stack in stacks:
        stack.consumed += requests
    for stack, cpu in zip(stacks, before, strict=True):
        settle(stack, stack.consumed)
        stack.cpu_per_request.append((cpu_seconds(stack.pids) - cpu) / requests)


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def added_ratio(ours: list[float], upstream: list[float], bare: list[float]) -> float | None:
    """hoptrace's added p50 over upstream's; ``None`` when upstream's added p50 is not above zero."""
    upstream_added = p50(upstream) - p50(bare)
    return (p50(ours) - p50(bare)) / upstream_added if upstream_added > 0 else None


def ratio_text(ratio: float | None) -> str:
    return "n/a (upstream adds nothing measurable)" if ratio is None else f"{ratio:.2f}"


def report(stacks: dict[str, Stack], requests: int, rounds: int, first: int) -> None:
    bare = stacks["bare (no tracing)"]

    def shares(stack: Stack) -> list[float]:
        """Tracing's CPU over bare's, round by round (the rounds' load hit both alike)."""
        return [v / b - 1 for v, b in zip(stack.cpu_per_request, bare.cpu_per_request, strict=True)]

    print(
        f"CPU: {requests} requests x {rounds} rounds, all variants at once, {CLIENTS} clients each; latency "
        f"(ms; +: added over bare): {len(bare.latencies)} warm requests and the first {first} per variant, "
        "one at a time, interleaved"
    )
    print(
        f"{'variant':34} {'CPU ms/req':>10} {'share':>6} {'(range)':>13} {'p50':>6} {'+p50':>6} {'p99':>6} "
        f"{'+p99':>6} {'1st':>6} {'+1st':>6} {'first p50':>9} {'+':>6} spans"
    )
    for name, stack in stacks.items():
        share = "" if stack is bare else f"{statistics.median(shares(stack)):+.0%}"
        spread = "" if stack is bare else f"{min(shares(stack)):+.0%}..{max(shares(stack)):+.0%}"
        warm, cold = stack.latencies, stack.first_latencies
        print(
            f"{name:34} {statistics.median(stack.cpu_per_request) * 1e3:10.2f} {share:>6} {spread:>13} "
            f"{p50(warm) * 1e3:6.1f} {(p50(warm) - p50(bare.latencies)) * 1e3:+6.1f} "
            f"{p99(warm) * 1e3:6.1f} {(p99(warm) - p99(bare.latencies)) * 1e3:+6.1f} "
            f"{cold[0] * 1e3:6.1f} {(cold[0] - bare.first_latencies[0]) * 1e3:+6.1f} "
            f"{p50(cold) * 1e3:9.1f} {(p50(cold) - p50(bare.first_latencies)) * 1e3:+6.1f} "
            f"{stack.spans_per_request:5.1f}"
        )
    ours, upstream = stacks["hoptrace run (defaults)"], stacks["opentelemetry-instrument"]
    ratios = [o / u for o, u in zip(shares(ours), shares(upstream), strict=True)]
    cpu_ratio = statistics.median(ratios)
    print(
        f"hoptrace's tracing CPU / upstream's: {cpu_ratio:.2f} (rounds {min(ratios):.2f}..{max(ratios):.2f}; "
        f"{'meets' if cpu_ratio <= 0.35 else 'misses'} <= 0.35)"
    )
    thirds = [slice(i * len(bare.latencies) // 3, (i + 1) * len(bare.latencies) // 3) for i in range(3)]
    parts = ", ".join(
        ratio_text(added_ratio(ours.latencies[part], upstream.latencies[part], bare.latencies[part]))
        for part in thirds
    )
    latency = added_ratio(ours.latencies, upstream.latencies, bare.latencies)
    verdict = "meets" if latency is not None and latency <= 0.5 else "misses"
    print(
        f"hoptrace's added p50 latency / upstream's, warm: {ratio_text(latency)} "
        f"(thirds of the run: {parts}; {verdict} <= 0.5)"
    )
    first_ratio = added_ratio(ours.first_latencies, upstream.first_latencies, bare.first_latencies)
    print(f"hoptrace's added p50 latency / upstream's, first {first} requests: {ratio_text(first_ratio)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=150, help="requests per variant per CPU round")
    parser.add_argument("--rounds", type=int, default=5, help="CPU rounds")
    parser.add_argument(
        "--warm-up", type=int, default=40, help="requests per variant before the warm samples"
    )
    parser.add_argument(
        "--first-requests", type=int, default=5, help="latency samples per variant on the fresh services"
    )
    parser.add_argument(
        "--latency-requests", type=int, default=150, help="warm latency samples per variant (one at a time)"
    )
    args = parser.parse_args()
    if not (BIN / "opentelemetry-instrument").exists():
        print("install the baseline first: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    os.environ.update(OTEL_BSP_SCHEDULE_DELAY=str(EXPORT_DELAY_MS))
    with (
        open_backend("embedded", subprocess_mode=True) as backend,
        start_rabbitmq() as broker,
        ServiceLauncher(
            backend.otlp_http_endpoint, protocol="http/protobuf", export_delay_ms=EXPORT_DELAY_MS
        ) as launcher,
    ):
        stacks = {
            name: start_stack(launcher, name, how, extra, broker.url)
            for name, (how, extra) in VARIANTS.items()
        }
        first = asyncio.run(interleaved_latencies(list(stacks.values()), args.first_requests, seed=1))
        for stack, latencies in zip(stacks.values(), first, strict=True):
            stack.first_latencies = latencies
        for stack in stacks.values():
            drive_alone(stack, args.warm_up, backend.tempo_url)
        warm = asyncio.run(interleaved_latencies(list(stacks.values()), args.latency_requests, seed=2))
        for stack, latencies in zip(stacks.values(), warm, strict=True):
            stack.latencies = latencies
        for round_number in range(args.rounds):
            measure_round(list(stacks.values()), args.requests)
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
        report(stacks, args.requests, args.rounds, args.first_requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
