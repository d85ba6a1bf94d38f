"""Start-up cost of the zero-code bootstrap, as a ratio to what ``opentelemetry-instrument`` adds.

Runs ``python -c "import httpx, aio_pika"`` bare, under ``hoptrace run``, with hoptrace's sitecustomize
directory on PYTHONPATH (no CLI hop), and under ``opentelemetry-instrument`` (needs ``opentelemetry-distro``,
from the ``bench`` extra), interleaved round by round in a new random order so machine noise hits every
variant alike. Prints each variant's median wall time and CPU time (user + system: less sensitive to a
loaded machine), the time it adds over bare python (the median of the per-round differences), and the ratio
of hoptrace's added time to opentelemetry-instrument's, with the 25th-75th percentiles of the per-round
ratios and the same ratio taken from each variant's fastest run (load only adds time). Goal: at most 0.25.

What is measured is what users get: a regular (non-editable) install. The benchmark builds a wheel of this
tree and installs it into a temporary virtual environment whose other packages are this environment's
(a path entry, so this environment's ``.pth`` files, among them the editable install's import finder, are
not run), and runs every variant, bare python included, with that environment's interpreter and console
scripts. ``--editable`` measures this environment instead: there every interpreter start also pays the
editable finder's start-up, and every hoptrace module import its lookup.

The baseline runs with upstream's instrumentations for httpx, aio-pika and Starlette installed (the
``bench`` extra), so it instruments what hoptrace instruments; the ratio is also printed against
``opentelemetry-instrument`` with those instrumentations switched off
(``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``), which configures the SDK only: a cheaper, stricter baseline.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/startup.py [--rounds 21] [--editable]

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
import sysconfig
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

CODE = "import httpx, aio_pika"
UPSTREAM_INSTRUMENTATIONS = "httpx,aio-pika,starlette,asgi"
UPSTREAM = "opentelemetry-instrument"
UPSTREAM_UNINSTRUMENTED = "opentelemetry-instrument, instrumentations off"
HOPTRACE = ("hoptrace run", "hoptrace sitecustomize on PYTHONPATH")
GOAL = 0.25
ROOT = Path(__file__).resolve().parent.parent

# pip's console-script template: what an installed ``opentelemetry-instrument`` runs.
_SCRIPT = """#!{python}
import re
import sys
from {module} import {function}
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit({function}())
"""


def _regular_install(directory: Path) -> Path:
    """A virtual environment in ``directory`` with hoptrace installed from a wheel; returns its bin/."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory / "venv")], check=True)
    python = directory / "venv" / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # This environment's packages, as a plain path entry: its .pth files (the editable finder) do not run.
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site_packages, "bench-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    wheels = directory / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("hoptrace-*.whl")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    (upstream,) = entry_points(group="console_scripts", name=UPSTREAM)
    script = directory / "venv" / "bin" / UPSTREAM
    script.write_text(_SCRIPT.format(python=python, module=upstream.module, function=upstream.attr))
    script.chmod(0o755)
    return python.parent


def _variants(bin_dir: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    python = str(bin_dir / "python")
    sitecustomize = subprocess.run(
        [str(bin_dir / "hoptrace"), "sitecustomize-path"], capture_output=True, text=True, check=True
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
    upstream = [str(bin_dir / UPSTREAM), python, "-c", CODE]
    return {
        "bare python": ([python, "-c", CODE], common),
        "hoptrace run": ([str(bin_dir / "hoptrace"), "run", "--", python, "-c", CODE], common),
        "hoptrace sitecustomize on PYTHONPATH": (
            [python, "-c", CODE],
            {**common, "PYTHONPATH": sitecustomize},
        ),
        "hoptrace CLI alone (sitecustomize-path)": (
            [str(bin_dir / "hoptrace"), "sitecustomize-path"],
            common,
        ),
        UPSTREAM: (upstream, common),
        UPSTREAM_UNINSTRUMENTED: (
            upstream,
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


# Run by each traced variant once before measuring: a tracer that failed to start would look cheap.
_CHECK = (
    "from opentelemetry import trace; from opentelemetry.sdk.trace import TracerProvider; "
    "assert isinstance(trace.get_tracer_provider(), TracerProvider), 'tracing is not active'"
)


def _measure(bin_dir: Path, rounds: int) -> dict[str, list[tuple[float, float]]]:
    variants = _variants(bin_dir)
    for name, (argv, env) in variants.items():
        if argv[-2:] == ["-c", CODE] and name != "bare python":
            check = subprocess.run([*argv[:-1], _CHECK], env=env, capture_output=True, text=True)
            if check.returncode != 0:
                raise SystemExit(f"{name}: tracing is not active, nothing to measure:\n{check.stderr}")
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for argv, env in variants.values():  # warm the page cache and .pyc files
        _time(argv, env)
    for _ in range(rounds):
        order = list(variants)
        random.shuffle(order)
        for name in order:
            samples[name].append(_time(*variants[name]))
    return samples


def _report(samples: dict[str, list[tuple[float, float]]], rounds: int) -> None:
    for index, measure in enumerate(("wall", "CPU")):
        values = {name: [sample[index] for sample in runs] for name, runs in samples.items()}
        bare = values["bare python"]
        added = {name: [v - b for v, b in zip(runs, bare, strict=True)] for name, runs in values.items()}
        print(f"{'variant':46} {measure + ' ms':>10} {'added ms':>10}   ({rounds} interleaved rounds)")
        for name, runs in values.items():
            print(
                f"{name:46} {statistics.median(runs) * 1000:10.1f} "
                f"{statistics.median(added[name]) * 1000:10.1f}"
            )
        for baseline in (UPSTREAM, UPSTREAM_UNINSTRUMENTED):
            upstream = statistics.median(added[baseline])
            for name in HOPTRACE:
                ratio = statistics.median(added[name]) / upstream
                per_round = [h / u for h, u in zip(added[name], added[baseline], strict=True) if u > 0]
                low, _, high = statistics.quantiles(per_round, n=4, method="inclusive")
                # Another machine's load only ever adds time: the fastest run of each variant is a
                # cross-check that a busy machine moves less.
                fastest = (min(values[name]) - min(bare)) / (min(values[baseline]) - min(bare))
                verdict = "meets" if ratio <= GOAL else "misses"
                print(
                    f"{measure} ratio {name} added / {baseline} added: {ratio:.2f} "
                    f"[per round {low:.2f}-{high:.2f}; fastest runs {fastest:.2f}] ({verdict} goal <= {GOAL})"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs of each variant (default %(default)s)")
    parser.add_argument(
        "--editable",
        action="store_true",
        help="measure this environment (an editable install) instead of a regular install of this tree",
    )
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the spread needs two rounds)")
    bin_dir = Path(sys.executable).parent
    if shutil.which(UPSTREAM, path=str(bin_dir)) is None or _missing_distro():
        print("install the baseline first: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hoptrace-startup-") as directory:
        if not args.editable:
            bin_dir = _regular_install(Path(directory))
        install = "this environment (editable install)" if args.editable else "a regular install (wheel)"
        print(f"measuring {install}: {bin_dir / 'python'} -c {CODE!r}")
        _report(_measure(bin_dir, args.rounds), args.rounds)
    return 0


def _missing_distro() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import opentelemetry.distro"], capture_output=True)
    return probe.returncode != 0


if __name__ == "__main__":
    sys.exit(main())
