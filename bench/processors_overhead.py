"""Per-span cost of hoptrace's tenant + RED processors, against the bare SDK, in the same run.

TracerProviders, each ending in a BatchSpanProcessor with a no-op exporter:

- ``bare``: nothing else;
- ``tenant+RED``: hoptrace's TenantRedMetricsSpanProcessor, the tenant and RED metrics processors as one
  (what the README tells users of a plain ``TracerProvider`` to add): the goals are its;
- ``tenant, RED``: TenantSpanProcessor and RedMetricsSpanProcessor added one after the other, as before
  TenantRedMetricsSpanProcessor existed (the SDK calls both processors' empty hooks too);
- ``naive``: a tenant-from-baggage processor (no cache) and a RED processor on the OTel metrics SDK
  (counter + explicit-bucket histogram with Tempo's buckets), the approach hoptrace replaces;
- ``+redaction`` (for information, outside the goal): tenant + RED + RedactionSpanProcessor around the
  BatchSpanProcessor, the bootstrap's default chain;
- ``RED shared`` (for information): tenant + RED whose series live in a memory-mapped file of a shared
  directory (``RedMetricsSpanProcessor.share_in``), as in every process of a service that serves
  ``/metrics`` (uvicorn ``--workers``, gunicorn); its extra cost over ``tenant+RED`` is printed per span;
- ``tenant+RED, hoptrace dispatch`` (for information): tenant + RED on a provider whose span processor is
  the one ``hoptrace run`` installs (``SpanProcessorDispatch``: hooks that do nothing are not called),
  compared with ``bare, hoptrace dispatch`` (the same provider with the BatchSpanProcessor alone): what
  the two processors add in a traced service.

The workloads: spans under a context whose baggage carries one of 4 tenants, cycling through 5 span
kinds and 10 span names. ``plain`` makes spans as application code does (``with
tracer.start_as_current_span(name, kind=kind):``) with no attribute. ``instrumented`` makes spans the way
hoptrace's instrumentation does: started as the current span with four semconv attributes, plus a
status-code attribute set before the end. ``minimal`` starts and ends attribute-less spans without making
them current: the worst case for the ratio. By default all three run, one after the other.

Time is the process's CPU time (so the BatchSpanProcessor's export thread counts, and other processes
on the machine do not), after a ``gc.collect()`` outside the timed part. In each round every variant is
measured right next to a ``bare`` measurement (before it in one round, after it in the next; variants
in rotating order), so that the machine's load of the moment hits both sides of that pair's ratio. The
figure is the median of those paired ratios over the rounds, printed with their 25th and 75th
percentiles: when the spread is wide, the machine was busy and the run says little. Goals: tenant+RED
(one processor) <= 1.15 x bare on plain spans, <= 1.10 x on instrumented spans (minimal: printed, no goal).

    .venv/bin/python bench/processors_overhead.py [--workload all|plain|instrumented|minimal]
                                                  [--spans N] [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence

from opentelemetry import baggage, context
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Tracer

from hoptrace.processors import (
    LATENCY_BUCKETS,
    TENANT_KEY,
    RedactionSpanProcessor,
    RedMetricsSpanProcessor,
    TenantRedMetricsSpanProcessor,
    TenantSpanProcessor,
    validate_tenant,
)
from hoptrace.tracing._spans.dispatch import SpanProcessorDispatch  # what `hoptrace run` installs

TENANTS = ("acme", "globex", "initech", "umbrella")
KINDS = (SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL)
NAMES = tuple(f"GET /api/v1/resource{i}/{{id}}" for i in range(10))


class _NoOpExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _NaiveTenantProcessor(SpanProcessor):
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        tenant = validate_tenant(baggage.get_baggage(TENANT_KEY, parent_context))
        if tenant is not None:
            span.set_attribute(TENANT_KEY, tenant)


class _NaiveRedProcessor(SpanProcessor):
    """Span-derived RED on the OpenTelemetry metrics SDK, written the obvious way."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        view = View(
            instrument_name="traces_spanmetrics_latency",
            aggregation=ExplicitBucketHistogramAggregation(list(LATENCY_BUCKETS)),
        )
        meter = MeterProvider(metric_readers=[self.reader], views=[view]).get_meter("naive-red")
        self._calls = meter.create_counter("traces_spanmetrics_calls")
        self._latency = meter.create_histogram("traces_spanmetrics_latency", unit="s")

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        labels = {
            "service": str(span.resource.attributes.get("service.name", "unknown_service")),
            "span_name": span.name,
            "span_kind": f"SPAN_KIND_{span.kind.name}",
            "status_code": f"STATUS_CODE_{span.status.status_code.name}",
            "tenant": str(attributes.get(TENANT_KEY, "")),
        }
        self._calls.add(1, labels)
        self._latency.record(((span.end_time or 0) - (span.start_time or 0)) / 1e9, labels)


def _provider(
    queue_size: int, *processors: SpanProcessor, redact: bool = False, dispatch: bool = False
) -> tuple[TracerProvider, Tracer]:
    resource = Resource.create({"service.name": "bench"})
    provider = TracerProvider(
        resource=resource, active_span_processor=SpanProcessorDispatch() if dispatch else None
    )
    for processor in processors:
        provider.add_span_processor(processor)
    # A queue that holds a whole round: a full queue drops spans, which would make a variant look cheaper.
    export: SpanProcessor = BatchSpanProcessor(_NoOpExporter(), max_queue_size=queue_size)
    provider.add_span_processor(RedactionSpanProcessor(export) if redact else export)
    return provider, provider.get_tracer("bench")


ATTRIBUTES = {
    "http.request.method": "GET",
    "url.path": "/api/v1/resource",
    "server.address": "inventory",
    "network.protocol.version": "1.1",
}


def _instrumented(tracer: Tracer, i: int) -> None:
    with tracer.start_as_current_span(NAMES[i % 10], kind=KINDS[i % 5], attributes=ATTRIBUTES) as span:
        span.set_attribute("http.response.status_code", 200)


def _plain(tracer: Tracer, i: int) -> None:
    with tracer.start_as_current_span(NAMES[i % 10], kind=KINDS[i % 5]):
        pass


def _minimal(tracer: Tracer, i: int) -> None:
    tracer.start_span(NAMES[i % 10], kind=KINDS[i % 5]).end()


WORKLOADS: dict[str, Callable[[Tracer, int], None]] = {
    "instrumented": _instrumented,
    "plain": _plain,
    "minimal": _minimal,
}


def _workload(tracer: Tracer, spans: int, make_span: Callable[[Tracer, int], None]) -> float:
    """Make ``spans`` spans with ``make_span``; return CPU seconds per span."""
    contexts = [baggage.set_baggage(TENANT_KEY, tenant) for tenant in TENANTS]
    per_tenant = spans // len(TENANTS)
    started = time.process_time()
    for tenant_context in contexts:
        token = context.attach(tenant_context)
        try:
            for i in range(per_tenant):
                make_span(tracer, i)
        finally:
            context.detach(token)
    return (time.process_time() - started) / (per_tenant * len(TENANTS))


GOALS = {"plain": 0.15, "instrumented": 0.10}
"""The goal per workload: tenant+RED's overhead over bare (``minimal`` is printed, with no goal)."""


def _variants(spans: int, shared_directory: str) -> dict[str, tuple[TracerProvider, Tracer]]:
    shared = TenantRedMetricsSpanProcessor()
    shared.share_in(shared_directory)
    return {
        "bare": _provider(spans + 1),
        "tenant+RED": _provider(spans + 1, TenantRedMetricsSpanProcessor()),
        SEPARATE: _provider(spans + 1, TenantSpanProcessor(), RedMetricsSpanProcessor()),
        "naive": _provider(spans + 1, _NaiveTenantProcessor(), _NaiveRedProcessor()),
        "+redaction": _provider(spans + 1, TenantRedMetricsSpanProcessor(), redact=True),
        "RED shared": _provider(spans + 1, shared),
        DISPATCH_BARE: _provider(spans + 1, dispatch=True),
        DISPATCH: _provider(spans + 1, TenantSpanProcessor(), RedMetricsSpanProcessor(), dispatch=True),
    }


SEPARATE = "tenant, RED"
DISPATCH = "tenant+RED, hoptrace dispatch"
DISPATCH_BARE = "bare, hoptrace dispatch"
BASELINES = {DISPATCH: DISPATCH_BARE}
"""The baseline of each variant paired with another than ``bare``."""


def _measure(workload: str, spans: int, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """CPU seconds per span of every variant (one entry per measurement), and each variant's ratios to
    its baseline's measurement (``bare`` unless :data:`BASELINES` says otherwise) made right next to it
    (one per round)."""
    with tempfile.TemporaryDirectory(prefix="hoptrace-bench-") as shared_directory:
        variants = _variants(spans, shared_directory)
        make_span = WORKLOADS[workload]

        def measure(name: str) -> float:
            tracer_provider, tracer = variants[name]
            gc.collect()  # outside the timed part: every measurement starts with the same garbage
            seconds = _workload(tracer, spans, make_span)
            tracer_provider.force_flush()  # start each measurement with an empty export queue
            return seconds

        for name in variants:  # warm-up: caches, series, imports
            measure(name)
        timings: dict[str, list[float]] = {name: [] for name in variants}
        baselines = {"bare", *BASELINES.values()}
        ratios: dict[str, list[float]] = {name: [] for name in variants if name not in baselines}
        others = list(ratios)
        for round_number in range(rounds):
            turn = round_number % len(others)
            for position, name in enumerate(others[turn:] + others[:turn]):  # rotate who goes first
                # Each variant is paired with a baseline measurement right before or after it
                # (alternately), so the load of the moment hits both sides of the ratio alike.
                baseline = BASELINES.get(name, "bare")
                pair = (baseline, name) if (round_number + position) % 2 == 0 else (name, baseline)
                seconds = {one: measure(one) for one in pair}
                for one, value in seconds.items():
                    timings[one].append(value)
                ratios[name].append(seconds[name] / seconds[baseline])
        for tracer_provider, _ in variants.values():
            tracer_provider.shutdown()
    return timings, ratios


def _report(
    workload: str, timings: dict[str, list[float]], ratios: dict[str, list[float]]
) -> tuple[float, float]:
    """Print one workload's table; return the median overhead over bare of tenant+RED (one processor) and of
    tenant, RED (two)."""
    rounds = len(ratios["tenant+RED"])
    print(f"workload {workload}: ratio to the bare SDK, median of {rounds} pairs [25th-75th percentile]")
    print(f"  {'bare':>11}: {statistics.median(timings['bare']) * 1e6:6.2f} us/span")
    for name, values in ratios.items():
        low, median, high = statistics.quantiles(values, n=4, method="inclusive")
        baseline = BASELINES.get(name)
        against = (
            f" (to {baseline}: {statistics.median(timings[baseline]) * 1e6:.2f} us/span)" if baseline else ""
        )
        print(
            f"  {name:>11}: {statistics.median(timings[name]) * 1e6:6.2f} us/span, "
            f"ratio {median:5.3f} [{low:5.3f}-{high:5.3f}]{against}"
        )
    extra = statistics.median(
        s - r for s, r in zip(ratios["RED shared"], ratios["tenant+RED"], strict=True)
    ) * statistics.median(timings["bare"])
    print(f"  RED shared in a file (multi-process /metrics): {extra * 1e6:+.2f} us/span over tenant+RED")
    return statistics.median(ratios["tenant+RED"]) - 1, statistics.median(ratios[SEPARATE]) - 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000, help="spans per variant per round")
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument(
        "--workload",
        choices=[*sorted(WORKLOADS), "all"],
        default="all",
        help="one workload, or all three one after the other (the default)",
    )
    args = parser.parse_args(argv)

    workloads = ["plain", "instrumented", "minimal"] if args.workload == "all" else [args.workload]
    print(f"spans per variant per round: {args.spans}, rounds: {args.rounds}")
    overheads = {
        workload: _report(workload, *_measure(workload, args.spans, args.rounds)) for workload in workloads
    }
    for workload, (overhead, separate) in overheads.items():
        goal = GOALS.get(workload)
        verdict = "no goal" if goal is None else ("meets" if overhead <= goal else "misses")
        target = "" if goal is None else f" the <= +{goal:.0%} goal"
        print(
            f"tenant+RED overhead over bare, {workload} spans: {overhead:+.1%} ({verdict}{target}); "
            f"as two processors: {separate:+.1%}"
        )


if __name__ == "__main__":
    main()
