"""Per-span cost of hoptrace's tenant + RED processors, against the bare SDK, in the same run.

TracerProviders, each ending in a BatchSpanProcessor with a no-op exporter:

- ``bare``: nothing else;
- ``tenant+RED``: hoptrace's TenantSpanProcessor and RedMetricsSpanProcessor;
- ``naive``: a tenant-from-baggage processor (no cache) and a RED processor on the OTel metrics SDK
  (counter + explicit-bucket histogram with Tempo's buckets), the approach hoptrace replaces;
- ``+redaction`` (for information, outside the goal): tenant + RED + RedactionSpanProcessor around the
  BatchSpanProcessor, the bootstrap's default chain;
- ``RED shared`` (for information): tenant + RED whose series live in a memory-mapped file of a shared
  directory (``RedMetricsSpanProcessor.share_in``), as in every process of a service that serves
  ``/metrics`` (uvicorn ``--workers``, gunicorn); its extra cost over ``tenant+RED`` is printed per span.

The workload: spans under a context whose baggage carries one of 4 tenants, cycling through 5 span
kinds and 10 span names. ``--workload instrumented`` (the default) makes spans the way hoptrace's
instrumentation does: started as the current span with four semconv attributes, plus a status-code
attribute set before the end (the bare SDK then costs about the 24 us/span DESIGN.md quotes).
``--workload plain`` makes spans as application code does (``with tracer.start_as_current_span(name,
kind=kind):``) with no attribute; ``--workload minimal`` starts and ends attribute-less spans without making
them current: the worst case for the ratio.

Time is the process's CPU time (so the BatchSpanProcessor's export thread counts, and other processes
on the machine do not). Rounds interleave the variants, in rotating order, so that noise hits them
alike; the figure is the median over rounds of each variant's time divided by ``bare``'s in that round.
Goal: tenant+RED <= 1.15 x bare.

    .venv/bin/python bench/processors_overhead.py [--workload instrumented|plain|minimal]
                                                  [--spans N] [--rounds N]
"""

from __future__ import annotations

import argparse
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
    TenantSpanProcessor,
    validate_tenant,
)

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
    queue_size: int, *processors: SpanProcessor, redact: bool = False
) -> tuple[TracerProvider, Tracer]:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=4_000, help="spans per variant per round")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="instrumented")
    args = parser.parse_args(argv)

    red = RedMetricsSpanProcessor()
    shared = RedMetricsSpanProcessor()
    shared_directory = tempfile.TemporaryDirectory(prefix="hoptrace-bench-")
    shared.share_in(shared_directory.name)
    variants: dict[str, tuple[TracerProvider, Tracer]] = {
        "bare": _provider(args.spans + 1),
        "tenant+RED": _provider(args.spans + 1, TenantSpanProcessor(), red),
        "naive": _provider(args.spans + 1, _NaiveTenantProcessor(), _NaiveRedProcessor()),
        "+redaction": _provider(
            args.spans + 1, TenantSpanProcessor(), RedMetricsSpanProcessor(), redact=True
        ),
        "RED shared": _provider(args.spans + 1, TenantSpanProcessor(), shared),
    }
    make_span = WORKLOADS[args.workload]
    for tracer_provider, tracer in variants.values():  # warm-up: caches, series, imports
        _workload(tracer, args.spans, make_span)
        tracer_provider.force_flush()
    timings: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(args.rounds):
        turn = round_number % len(names)
        for name in names[turn:] + names[:turn]:  # rotate who goes first
            tracer_provider, tracer = variants[name]
            timings[name].append(_workload(tracer, args.spans, make_span))
            tracer_provider.force_flush()  # start each measurement with an empty export queue
    for tracer_provider, _ in variants.values():
        tracer_provider.shutdown()
    shared_directory.cleanup()

    print(
        f"workload: {args.workload}, spans per variant per round: {args.spans}, rounds: {args.rounds}, "
        f"RED series: {len(red.snapshot())}"
    )
    # Each round's variants run back to back, so a round's ratio cancels the machine's slow drifts;
    # the figure is the median of the per-round ratios.
    ratios = {
        name: statistics.median(v / b for v, b in zip(values, timings["bare"], strict=True))
        for name, values in timings.items()
    }
    for name, values in timings.items():
        print(
            f"{name:>11}: {statistics.median(values) * 1e6:6.2f} us/span, ratio to bare {ratios[name]:5.3f}"
        )
    extra = statistics.median(
        s - r for s, r in zip(timings["RED shared"], timings["tenant+RED"], strict=True)
    )
    print(f"RED shared in a file (multi-process /metrics) costs {extra * 1e6:+.2f} us/span over tenant+RED")
    overhead = ratios["tenant+RED"] - 1
    verdict = "meets" if overhead <= 0.15 else "misses"
    print(f"tenant+RED overhead over bare: {overhead:+.1%} ({verdict} the <= +15% goal)")


if __name__ == "__main__":
    main()
