"""Per-span CPU of hoptrace's hop spans against the SDK's own spans, in the same run.

One ``TracerProvider`` as ``hoptrace run`` builds it (its span processor, tenant, RED, the batch processor,
and redaction on the export thread before an exporter that encodes every batch to OTLP bytes and sends
nothing). Each span
is made the way a hop makes it: started under a context carrying the tenant in baggage, with five
semconv attributes, a status-code attribute set before the end. The same spans are made through:

- ``SDK tracer``: ``provider.get_tracer(...)``, the SDK's ``Tracer.start_span`` and ``Span.end``;
- ``hop tracer``: hoptrace's ``HopTracer`` (``hoptrace.tracing._spans``), what the hops use.

Printed per variant: the process's CPU time per span (so the export thread's encoding counts), and the
same with no processor at all (the span's own start, attribute and end). In each round both variants
run next to each other, in alternating order; the figure is the median over rounds of the paired ratio
hop / SDK, with its 25th-75th percentiles (a wide spread means a busy machine). Also printed: the OTLP
encoder on ended spans read through their public properties against its direct field reads.

    .venv/bin/python bench/hop_spans.py [--spans 5000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry import baggage, context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from hoptrace.tracing._otlp import span_fields
from hoptrace.tracing._otlp.encoding import encode_spans
from hoptrace.tracing._otlp.redacting import RedactingExporter
from hoptrace.tracing._pipeline import CountingBatchSpanProcessor
from hoptrace.tracing._processors import processor_chain, redactor_from_environment
from hoptrace.tracing._spans.dispatch import SpanProcessorDispatch
from hoptrace.tracing._spans.hop import HopTracer

RESOURCE = Resource({"service.name": "bench"})
PARENT = baggage.set_baggage("tenant.id", "acme", context.Context())
ATTRIBUTES = {
    "http.request.method": "POST",
    "url.full": "http://127.0.0.1:8001/stock",
    "server.address": "127.0.0.1",
    "server.port": 8001,
    "network.protocol.version": "1.1",
}


class EncodingExporter(SpanExporter):
    """Encodes every batch as the OTLP exporters do, and sends nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans)
        return SpanExportResult.SUCCESS


def provider(with_processors: bool) -> TracerProvider:
    made = TracerProvider(resource=RESOURCE, active_span_processor=SpanProcessorDispatch())
    if with_processors:
        redactor = redactor_from_environment({})
        assert redactor is not None
        # A queue that holds a whole round: every span is exported (and paid for) in the round that made it.
        exporter = RedactingExporter(EncodingExporter(), redactor)
        batch = CountingBatchSpanProcessor(exporter, max_queue_size=1_000_000)
        chain = processor_chain(batch, {}, resource=RESOURCE, redaction_in_export=True)
        for processor in chain.processors:
            made.add_span_processor(processor)
    return made


def workload(tracer: trace.Tracer, spans: int) -> None:
    for _ in range(spans):
        span = tracer.start_span("POST", context=PARENT, kind=SpanKind.CLIENT, attributes=ATTRIBUTES)
        span.set_attribute("http.response.status_code", 200)
        span.end()


def cpu_per_span(run: Callable[[], None], spans: int, flush: Callable[[], object]) -> float:
    gc.collect()
    started = time.process_time()
    run()
    flush()
    return (time.process_time() - started) / spans


def compare(label: str, with_processors: bool, spans: int, rounds: int) -> None:
    made = provider(with_processors)
    sdk, hop = made.get_tracer("hoptrace", "0.1.0"), HopTracer(made)
    pairs: list[tuple[float, float]] = []
    for number in range(rounds + 1):
        order = [("sdk", sdk), ("hop", hop)][:: 1 if number % 2 else -1]
        measured = {
            name: cpu_per_span(lambda t=tracer: workload(t, spans), spans, made.force_flush)
            for name, tracer in order
        }
        if number:  # the first round warms caches and the exporter
            pairs.append((measured["sdk"], measured["hop"]))
    made.shutdown()
    ratios = sorted(hop / sdk for sdk, hop in pairs)
    quartiles = statistics.quantiles(ratios, n=4)
    sdk_us = statistics.median(p[0] for p in pairs) * 1e6
    hop_us = statistics.median(p[1] for p in pairs) * 1e6
    print(
        f"{label:44} SDK tracer {sdk_us:6.1f} us  hop tracer {hop_us:6.1f} us  "
        f"hop/SDK {statistics.median(ratios):.2f} ({quartiles[0]:.2f}..{quartiles[2]:.2f})"
    )


def compare_encoding(spans: int, rounds: int) -> None:
    collected: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
            collected.extend(batch)
            return SpanExportResult.SUCCESS

    made = TracerProvider(resource=RESOURCE)
    made.add_span_processor(SimpleSpanProcessor(Keep()))
    workload(made.get_tracer("hoptrace"), min(spans, 512))
    encode_spans(collected)  # fills the direct-read classes and the caches
    direct = span_fields._direct

    def timed(classes: tuple[type, ...] | None) -> float:
        span_fields._direct = classes
        return cpu_per_span(
            lambda: [encode_spans(collected) for _ in range(20)], 20 * len(collected), lambda: 0
        )

    ratios = sorted(timed(direct) / timed(()) for _ in range(rounds))
    span_fields._direct = direct
    print(f"{'OTLP encoding, direct / public field reads':44} {statistics.median(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=5000, help="spans per variant per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    compare("hoptrace's chain (tenant, RED, batch, redaction)", True, args.spans, args.rounds)
    compare("no processor (the span alone)", False, args.spans, args.rounds)
    compare_encoding(args.spans, args.rounds)


if __name__ == "__main__":
    main()
