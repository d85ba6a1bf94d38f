"""Cost of one hop's propagation: hoptrace's W3C propagators against opentelemetry-api's, same run.

One "hop" injects a context (a sampled span, a two-member tracestate, the tenant plus one more baggage
entry) into a header dict and extracts it again, as a client and the next service do. Variants, interleaved
round by round so machine noise hits each alike: upstream's ``TraceContextTextMapPropagator`` +
``W3CBaggagePropagator``, hoptrace's, and hoptrace's with ``HOPTRACE_TENANT_SECRET`` set (the tenant signed
on inject and verified on extract). Prints the median microseconds per hop and each as a ratio to upstream.

    .venv/bin/python bench/propagators.py [--hops 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hoptrace.tracing._propagation import extract, mapping_getter
from hoptrace.tracing._tenant_signature import TenantKeys, configure_tenant_keys
from hoptrace.tracing._w3c.selection import propagator_from_environment


def _context(trace_id: int) -> Context:
    state = TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")])
    span_context = SpanContext(trace_id, 0x00F067AA0BA902B7, False, TraceFlags(1), state)
    context = trace.set_span_in_context(NonRecordingSpan(span_context))
    context = baggage.set_baggage("tenant.id", "acme", context)
    return baggage.set_baggage("plan", "gold", context)


def _hop(propagator: CompositePropagator, hoptrace: bool) -> Callable[[Context], None]:
    def hop(context: Context) -> None:
        carrier: dict[str, str] = {}
        propagator.inject(carrier, context)
        if hoptrace:
            extract(carrier)  # what a hoptrace service runs: propagators, tenant signature and validation
        else:
            propagator.extract(carrier, Context(), mapping_getter)

    return hop


def _measure(hop: Callable[[Context], None], contexts: list[Context]) -> float:
    started = time.perf_counter()
    for context in contexts:
        hop(context)
    return (time.perf_counter() - started) / len(contexts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from opentelemetry import propagate

    # A new trace id per hop: signatures are cached per (tenant, trace id), and a receiving service meets
    # each trace id first. Only the sending side's later hops of one request would hit that cache.
    contexts = [_context(0x4BF92F3577B34DA6A3CE929D0E0E4736 + index) for index in range(args.hops)]
    upstream = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    ours = propagator_from_environment({})
    propagate.set_global_textmap(ours)
    keys = TenantKeys(["bench-secret-0123456789"])
    variants: dict[str, tuple[Callable[[Context], None], TenantKeys | None]] = {
        "opentelemetry-api": (_hop(upstream, hoptrace=False), None),
        "hoptrace": (_hop(ours, hoptrace=True), None),
        "hoptrace + tenant secret": (_hop(ours, hoptrace=True), keys),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (hop, variant_keys) in variants.items():
            configure_tenant_keys(variant_keys)
            samples[name].append(_measure(hop, contexts))
    configure_tenant_keys(None)
    baseline = statistics.median(samples["opentelemetry-api"])
    print(f"one hop (inject + extract), median of {args.rounds} rounds x {args.hops} hops")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:26} {median:7.2f} us   {median / baseline:5.2f} x opentelemetry-api")


if __name__ == "__main__":
    main()
