"""Start-up cost of the zero-code bootstrap, as a ratio to what ``opentelemetry-instrument`` adds.

Runs ``python -c "import httpx, aio_pika"`` bare, under ``hoptrace run``, with hoptrace's sitecustomize
directory on PYTHONPATH (no CLI hop), and under ``opentelemetry-instrument`` (needs ``opentelemetry-distro``,
from the ``bench`` extra), interleaved round by round so machine noise hits every variant alike. Prints the
median wall time and CPU time (user + system: less sensitive to a loaded machine) of each, the time each
adds over bare python, and the ratio of hoptrace's added time to opentelemetry-instrument's.
Goal: at most 0.25.

The baseline runs with upstream's instrumentations for httpx, aio-pika and Starlette installed (the
``bench`` extra), so it instruments what hoptrace instruments; the ratio is also printed against
``opentelemetry-instrument`` with those instrumentations switched off
(``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``), which configures the SDK only: a cheaper, stricter baseline.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/startup.py [--rounds 21]

Both tracers are configured alike (OTLP/gRPC to a closed local port, so nothing is exported) and no span is
made, so this measures start-up only.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CODE = "import httpx, aio_pika"
UPSTREAM_INSTRUMENTATIONS = "httpx,aio-pika,starlette,asgi"
UPSTREAM_UNINSTRUMENTED = "opentelemetry-instrument, instrumentations off"
BIN = Path(sys.executable).parent


def _variants() -> dict[str, tuple[list[str], dict[str, str]]]:
    python = sys.executable
    sitecustomize = subprocess.run(
        [str(BIN / "hoptrace"), "sitecustomize-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    skipped = ("OTEL_", "HOPTRACE_", "PYTHON")
    common = {key: value for key, value in os.environ.items() if not key.startswith(skipped)}
    common.update(
        OTEL_SERVICE_NAME="bench",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    return {
        "bare python": ([python, "-c", CODE], common),
        "hoptrace run": ([str(BIN / "hoptrace"), "run", "--", python, "-c", CODE], common),
        "hoptrace sitecustomize on PYTHONPATH": (
            [python, "-c", CODE],
            {**common, "PYTHONPATH": sitecustomize},
        ),
        "hoptrace CLI alone (sitecustomize-path)": ([str(BIN / "hoptrace"), "sitecustomize-path"], common),
        "opentelemetry-instrument": ([str(BIN / "opentelemetry-instrument"), python, "-c", CODE], common),
        UPSTREAM_UNINSTRUMENTED: (
            [str(BIN / "opentelemetry-instrument"), python, "-c", CODE],
            {**common, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": UPSTREAM_INSTRUMENTATIONS},
        ),
    }


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and what it waited for) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs of each variant (default %(default)s)")
    args = parser.parse_args()
    if shutil.which("opentelemetry-instrument", path=str(BIN)) is None or _missing_distro():
        print("install the baseline first: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    variants = _variants()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for argv, env in variants.values():  # warm the page cache and .pyc files
        _time(argv, env)
    for _ in range(args.rounds):
        order = list(variants)
        random.shuffle(order)
        for name in order:
            samples[name].append(_time(*variants[name]))
    for index, measure in enumerate(("wall", "CPU")):
        median = {
            name: statistics.median(value[index] for value in values) for name, values in samples.items()
        }
        bare = median["bare python"]
        print(f"{'variant':46} {measure + ' ms':>10} {'added ms':>10}   ({args.rounds} interleaved rounds)")
        for name, value in median.items():
            print(f"{name:46} {value * 1000:10.1f} {(value - bare) * 1000:10.1f}")
        for baseline in ("opentelemetry-instrument", UPSTREAM_UNINSTRUMENTED):
            upstream = median[baseline] - bare
            for name in ("hoptrace run", "hoptrace sitecustomize on PYTHONPATH"):
                ratio = (median[name] - bare) / upstream
                verdict = "meets" if ratio <= 0.25 else "misses"
                print(
                    f"{measure} ratio {name} added / {baseline} added: {ratio:.2f} ({verdict} goal <= 0.25)"
                )
    return 0


def _missing_distro() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import opentelemetry.distro"], capture_output=True)
    return probe.returncode != 0


if __name__ == "__main__":
    sys.exit(main())
