"""CPU instructions per request of ``bench/service_cost.py``'s four services, counted by valgrind's callgrind.

Deterministic whatever else loads the machine (unlike CPU time), so a change to the hops can be judged by
one run: each variant's services run under ``valgrind --tool=callgrind --instr-atstart=no``; after a
warm-up, counting is switched on (``callgrind_control -i on``), ``--requests`` orders are posted, the work
settles, and the counts are dumped. Prints instructions per request for each service and the total, and
each variant's share over bare, as ``bench/service_cost.py`` does with CPU time. The callgrind files stay
in ``--out`` for ``callgrind_annotate``. Slow (each service runs ~50x slower): keep ``--requests`` small.

    .venv/bin/python bench/service_instructions.py [--variants bare,hoptrace,upstream] [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service_cost import BIN, ORDER, SERVICES, spans_received

from hoptrace.harness import ServiceLauncher, open_backend, start_rabbitmq

EXPORT_DELAY_MS = 5000
"""Long enough that a batch holds as many spans as under ``bench/service_cost.py``'s load."""
SETTLE_SECONDS = 7.0
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "bare": ("bare", {}),
    "hoptrace": ("hoptrace", {}),
    "hoptrace-off": ("hoptrace", {"OTEL_TRACES_SAMPLER": "always_off"}),
    "noredaction": ("hoptrace", {"HOPTRACE_REDACTION": "false"}),
    "nored": ("hoptrace", {"HOPTRACE_RED_METRICS": "false"}),
    "nolog": ("hoptrace", {"HOPTRACE_LOG_CORRELATION": "false"}),
    "upstream": ("upstream", {}),
}
SERVICE_NAMES = ("inventory", "worker", "consumer", "api")


def start_variant(
    launcher: ServiceLauncher, variant: str, broker_url: str, out: Path
) -> tuple[str, dict[str, int], Path]:
    how, extra = VARIANTS[variant]
    env = {
        **extra,
        "AMQP_URL": broker_url,
        "DEMO_QUEUE": f"ins-orders-{variant}-{os.getpid()}",
        "DEMO_NEXT_QUEUE": f"ins-shipped-{variant}-{os.getpid()}",
        "PYTHONHASHSEED": "0",
    }
    prefix = [str(BIN / "opentelemetry-instrument")] if how == "upstream" else []
    pids: dict[str, int] = {}

    def run(service: str, command: list[str], ready: str, more: dict[str, str] | None = None) -> int:
        valgrind = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/{variant}-{service}.%p",
        ]
        started = launcher.start(
            f"{variant}-{service}",
            [*prefix, *valgrind, *command],
            ready_log=ready,
            env={**env, **(more or {})},
            traced=how == "hoptrace",
            timeout=180,
        )
        env.setdefault("DEMO_INVENTORY_URL", started.url or "")
        return started.process.pid

    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "0", "--no-access-log"]
    ready = r"Uvicorn running on (?P<url>http://[^:\s]+:(?P<port>\d+))"
    pids["inventory"] = run("inventory", [*uvicorn, "hoptrace.harness.demo.inventory:app"], ready)
    pids["worker"] = run("worker", [sys.executable, str(SERVICES), "worker"], "worker ready")
    pids["consumer"] = run("consumer", [sys.executable, str(SERVICES), "consumer"], "consumer ready")
    edge = {"HOPTRACE_TENANT_HEADER": "X-Tenant-ID"}
    pids["api"] = run("api", [*uvicorn, "hoptrace.harness.demo.api:app"], ready, edge)
    consumer_log = launcher.services[-2].process.log_path
    return launcher.services[-1].url or "", pids, consumer_log


def valgrind_pid(pid: int) -> int:
    """The process under callgrind among ``pid`` and its descendants (``hoptrace run`` may fork)."""
    todo = [pid]
    while todo:
        current = todo.pop()
        exe = os.readlink(f"/proc/{current}/exe") if os.path.exists(f"/proc/{current}/exe") else ""
        if "callgrind" in exe or "valgrind" in Path(f"/proc/{current}/cmdline").read_text():
            return current
        for child in Path(f"/proc/{current}/task/{current}/children").read_text().split():
            todo.append(int(child))
    raise RuntimeError(f"no callgrind process under {pid}")


async def drive(url: str, requests: int, clients: int = 4) -> None:
    import httpx

    remaining = iter(range(requests))

    async def client(tenant: str) -> None:
        async with httpx.AsyncClient(base_url=url, headers={"X-Tenant-ID": tenant}, timeout=120) as http:
            for _ in remaining:
                (await http.post("/orders", json=ORDER)).raise_for_status()

    await asyncio.gather(*(client(f"tenant{i}") for i in range(clients)))


def settle(consumer_log: Path, expected: int, tempo_url: str, timeout: float = 600.0) -> None:
    """Block until ``expected`` messages were consumed and the backend received no span for SETTLE_SECONDS
    (longer than the export delay: the last batch went out). Not by CPU: under callgrind an idle uvicorn's
    10 Hz tick costs too much to tell idle from busy."""
    deadline = time.monotonic() + timeout
    while consumer_log.read_bytes().count(b"done\n") < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"work did not settle: fewer than {expected} messages consumed")
        time.sleep(0.25)
    spans, quiet_since = spans_received(tempo_url), time.monotonic()
    while time.monotonic() - quiet_since < SETTLE_SECONDS:
        time.sleep(0.5)
        now = spans_received(tempo_url)
        if now != spans:
            spans, quiet_since = now, time.monotonic()


def callgrind_control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def total_instructions(out: Path, variant: str, service: str) -> int:
    total = 0
    for path in out.glob(f"{variant}-{service}.*"):
        for line in path.read_text(errors="replace").splitlines():
            match = re.match(r"(?:summary|totals): (\d+)", line)
            if match:
                total += int(match.group(1))
                break
    return total


def measure(
    variant: str, requests: int, warm_up: int, broker_url: str, otlp: str, tempo_url: str, out: Path
) -> dict[str, float]:
    with ServiceLauncher(otlp, protocol="http/protobuf", export_delay_ms=EXPORT_DELAY_MS) as launcher:
        url, pids, consumer_log = start_variant(launcher, variant, broker_url, out)
        asyncio.run(drive(url, warm_up))
        settle(consumer_log, warm_up, tempo_url)
        grind = {service: valgrind_pid(pid) for service, pid in pids.items()}
        for file in out.glob(f"{variant}-*"):
            file.unlink()
        for pid in grind.values():
            callgrind_control("--instr=on", pid)
        asyncio.run(drive(url, requests))
        settle(consumer_log, warm_up + requests, tempo_url)
        for pid in grind.values():
            callgrind_control("--dump", pid)
            callgrind_control("--instr=off", pid)
        return {s: total_instructions(out, variant, s) / requests for s in SERVICE_NAMES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="bare,hoptrace,upstream")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--out", default=None, help="folder for the callgrind files (default: a new one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="hoptrace-callgrind-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.update(OTEL_BSP_SCHEDULE_DELAY=str(EXPORT_DELAY_MS))
    results: dict[str, dict[str, float]] = {}
    with open_backend("embedded", subprocess_mode=True) as backend, start_rabbitmq() as broker:
        for variant in args.variants.split(","):
            results[variant] = measure(
                variant,
                args.requests,
                args.warm_up,
                broker.url,
                backend.otlp_http_endpoint,
                backend.tempo_url,
                out,
            )
            row = results[variant]
            print(
                f"{variant:14} "
                + " ".join(f"{s} {row[s] / 1e6:6.2f}M" for s in SERVICE_NAMES)
                + f"  total {sum(row.values()) / 1e6:6.2f}M",
                flush=True,
            )
    if "bare" in results:
        bare = sum(results["bare"].values())
        for variant, row in results.items():
            total = sum(row.values())
            print(f"{variant:14} instructions/request {total / 1e6:7.2f}M share {total / bare - 1:+.1%}")
    print(f"callgrind files: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
