"""CPU instructions per span of hoptrace's tenant + RED processors over the bare SDK, counted by valgrind.

The companion of bench/processors_overhead.py, whose timed figures move with the machine's load: counted
instructions do not. Each variant runs twice under cachegrind (``PYTHONHASHSEED=0``, address randomisation
off), making ``--spans`` and then twice as many spans after the same warm-up; the difference divided by
``--spans`` is its cost per span. The batch processor exports only at the end, so that its thread adds
nothing random. Variants: ``bare`` (the SDK with a BatchSpanProcessor), ``tenant+RED``
(TenantRedMetricsSpanProcessor: the goal line), ``separate`` (the two processors added one after the other),
``empty`` (a SpanProcessor whose hooks do nothing: what the SDK's three hook calls cost), ``tenant`` and
``RED`` alone. Needs ``valgrind`` and ``setarch``; two variants run at a time.

    .venv/bin/python bench/processors_instructions.py [--workload instrumented|plain|minimal] [--spans 2000]
                                                      [--variants bare,tenant+RED,...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = ("bare", "tenant+RED", "separate", "empty", "tenant", "RED")
_WARM_UP = 400


def _child(variant: str, workload: str, spans: int) -> None:
    import gc

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    sys.path.insert(0, str(Path(__file__).parent))
    from processors_overhead import WORKLOADS, _NoOpExporter, _workload

    from hoptrace.processors import (
        RedMetricsSpanProcessor,
        TenantRedMetricsSpanProcessor,
        TenantSpanProcessor,
    )

    processors: dict[str, tuple[SpanProcessor, ...]] = {
        "bare": (),
        "tenant+RED": (TenantRedMetricsSpanProcessor(),),
        "separate": (TenantSpanProcessor(), RedMetricsSpanProcessor()),
        "empty": (SpanProcessor(),),
        "tenant": (TenantSpanProcessor(),),
        "RED": (RedMetricsSpanProcessor(),),
    }
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    for processor in processors[variant]:
        provider.add_span_processor(processor)
    queue = _WARM_UP + spans + 1  # holds everything: the batch processor exports at force_flush only
    provider.add_span_processor(
        BatchSpanProcessor(
            _NoOpExporter(), max_queue_size=queue, max_export_batch_size=queue, schedule_delay_millis=10**9
        )
    )
    tracer = provider.get_tracer("bench")
    make_span = WORKLOADS[workload]
    _workload(tracer, _WARM_UP, make_span)
    provider.force_flush()
    gc.collect()
    gc.disable()
    _workload(tracer, spans, make_span)
    provider.force_flush()


def _instructions(variant: str, workload: str, spans: int) -> int:
    command = [
        "setarch", "-R", "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, __file__, "--child", variant, "--workload", workload, "--spans", str(spans),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True
    )
    match = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from valgrind for {variant!r}:\n{result.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def _per_span(variant: str, workload: str, spans: int) -> float:
    return (_instructions(variant, workload, 2 * spans) - _instructions(variant, workload, spans)) / spans


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=["instrumented", "plain", "minimal"], default="instrumented")
    parser.add_argument("--spans", type=int, default=2000, help="spans of the shorter run (multiple of 4)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS)
    )
    parser.add_argument("--child", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.workload, args.spans)
        return
    variants = [name.strip() for name in args.variants.split(",")]
    if "bare" not in variants:
        variants.insert(0, "bare")
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(
            zip(
                variants,
                pool.map(lambda name: _per_span(name, args.workload, args.spans), variants),
                strict=True,
            )
        )
    bare = counts["bare"]
    print(f"workload {args.workload}: CPU instructions per span (cachegrind, {args.spans} spans)")
    for name, count in counts.items():
        added = "" if name == "bare" else f", {count - bare:+8.0f} ({(count - bare) / bare:+.1%}) over bare"
        print(f"  {name:>11}: {count:9.0f}{added}")


if __name__ == "__main__":
    main()
