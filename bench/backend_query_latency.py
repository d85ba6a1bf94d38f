"""Embedded backend: query latency at 50k, 200k and 500k stored spans, memory per span, ingest rate.

For each size it starts ``hoptrace backend`` (its own process) and ingests traces of 5-10 spans from 10
services (a few attributes each, start times spread over the last hour) over OTLP/gRPC (the backend
indexes them in the background while ingest and queries pause; tags and tag values answer from what the
receiver catalogued of each request, a search that finds the index behind skips the traces not indexed
yet that cannot match, told from that catalogue, from the span keys the receiver worked out per request,
or from their bytes, when its query allows, and metrics count the rows the receiver worked out).
Right after ingest it runs each query below once, in order, and prints that first call's latency
(``first``: what a query arriving right after a burst of ingest waits, and the first query on an
attribute key never queried before), then times each again over HTTP (p50, p99):

- searches: selective (20 hits), one on a span attribute never queried before, one matching nothing,
  a broad ``{ }`` (limit 20);
- ``/api/v2/search/tags`` and two tag-value lookups;
- TraceQL metrics ``query_range`` over 1 h (step 60 s) in the shapes Grafana's Traces Drilldown and
  Explore send: rate by service, count, a p90 of durations, a duration histogram, and a rate with a
  selective filter.

Each p99 is also printed as a ratio of the same run's baseline: a full scan, i.e. a search the index cannot
narrow (a regex), which reads every stored trace as every search did before the index. Memory per stored
span is the backend's resident memory (store and index) over its idle size, after ingest and after the
queries. Run (also called by ``bench/backend_ingest.py``):

    .venv/bin/python bench/backend_query_latency.py [--sizes 50000,200000,500000] [--repeat 30] [--spread]

``--spread`` sends each trace's root span in the request after its other spans (as when a server exports
its span after its clients' went), so that every trace is written twice: a workload that flatters neither
the index (each trace read twice) nor the receiver (each request adds to traces stored before).

Goals at 500k spans: every search, tags and tag values < 50 ms, the first call right after ingest as
well as p99; metrics query_range < 200 ms (first and p99); ingest >= 125,000 spans/s; memory per stored
span <= 645 bytes. The last lines say which goals the largest size met.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from itertools import pairwise

import grpc
import httpx
from backend_ingest import rss_kib, running_backend  # bench/ is the script's directory
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVICES = 10
RARE_EVERY = 150  # one trace in 150 has the rare span: a selective search with >= 20 hits
SEARCHES = {
    "selective search (20 hits)": ("/api/search", {"q": '{ name = "checkout rare" }', "limit": "20"}),
    "search on a new attribute key": ("/api/search", {"q": '{ span.tenant.id = "t3" }', "limit": "20"}),
    "search matching nothing": (
        "/api/search",
        {"q": '{ resource.service.name = "svc-3" && name = "no such span" }'},
    ),
    "broad search { } limit 20": ("/api/search", {"q": "{ }", "limit": "20"}),
    "tags (v2)": ("/api/v2/search/tags", {}),
    "tag values resource.service.name": ("/api/v2/search/tag/resource.service.name/values", {}),
    "tag values span.http.route": ("/api/v2/search/tag/span.http.route/values", {}),
}
METRICS = {
    f"metrics {name}": ("/api/metrics/query_range", {"q": query, "since": "1h", "step": "60s"})
    for name, query in (
        ("rate by service", "{ } | rate() by (resource.service.name)"),
        ("count_over_time", "{ } | count_over_time()"),
        ("p90 duration", "{ } | quantile_over_time(duration, .9)"),
        ("duration histogram", "{ } | histogram_over_time(duration)"),
        ("rate, svc-3 errors", '{ resource.service.name = "svc-3" && status = error } | rate()'),
    )
}
FULL_SCAN = ("/api/search", {"q": '{ name =~ "no such span.*" }'})


def build_requests(total_spans: int, rng: random.Random, spread: bool = False) -> list[bytes]:
    """1000-span requests of traces with 5-10 spans (server root, client children). ``spread``: each
    trace's root span goes in the next request, as when a service exports its server span after its
    clients' spans went (a trace written twice; the index reads it twice)."""
    messages: list[ExportTraceServiceRequest] = []
    now = time.time_ns()
    made = 0
    trace_number = 0
    while made < total_spans:
        message = ExportTraceServiceRequest()
        by_service: dict[int, object] = {}
        in_request = 0
        while in_request < 1000 and made + in_request < total_spans:
            trace_number += 1
            service = trace_number % SERVICES
            scope_spans = by_service.get(service)
            if scope_spans is None:
                resource_spans = message.resource_spans.add()
                resource_spans.resource.attributes.add(
                    key="service.name", value=AnyValue(string_value=f"svc-{service}")
                )
                resource_spans.resource.attributes.add(key="host.name", value=AnyValue(string_value="bench"))
                scope_spans = by_service[service] = resource_spans.scope_spans.add()
                scope_spans.scope.name = "bench"  # type: ignore[attr-defined]
            trace_id = rng.randbytes(16)
            root = rng.randbytes(8)
            start = now - rng.randrange(3_500) * 1_000_000_000
            count = rng.randint(5, 10)
            for index in range(count):
                span = scope_spans.spans.add()  # type: ignore[attr-defined]
                span.trace_id = trace_id
                span.span_id = root if index == 0 else rng.randbytes(8)
                if index:
                    span.parent_span_id = root
                route = f"/api/{['orders', 'users', 'stock', 'cart'][trace_number % 4]}"
                if index == 0:
                    span.name = f"GET {route}"
                elif index == 1 and trace_number % RARE_EVERY == 0:
                    span.name = "checkout rare"
                else:
                    span.name = f"SELECT {route[5:]} {index}"
                span.kind = Span.SPAN_KIND_SERVER if index == 0 else Span.SPAN_KIND_CLIENT
                span.start_time_unix_nano = start + index * 1000
                span.end_time_unix_nano = start + index * 1000 + rng.randrange(100_000, 50_000_000)
                if trace_number % 50 == 0 and index == count - 1:
                    span.status.code = Status.STATUS_CODE_ERROR
                span.attributes.add(key="http.route", value=AnyValue(string_value=route))
                span.attributes.add(key="tenant.id", value=AnyValue(string_value=f"t{trace_number % 7}"))
                span.attributes.add(key="http.response.status_code", value=AnyValue(int_value=200))
            in_request += count
        made += in_request
        messages.append(message)
    if spread:
        _move_roots_to_the_next_request(messages)
    return [message.SerializeToString() for message in messages]


def _move_roots_to_the_next_request(messages: list[ExportTraceServiceRequest]) -> None:
    for message, following in pairwise(messages):
        for resource_spans in message.resource_spans:
            target = next(
                (later for later in following.resource_spans if later.resource == resource_spans.resource),
                None,
            )
            if target is None:
                target = following.resource_spans.add()
                target.resource.CopyFrom(resource_spans.resource)
                target.scope_spans.add().scope.name = "bench"
            for scope_spans in resource_spans.scope_spans:
                kept = [span for span in scope_spans.spans if span.parent_span_id]
                target.scope_spans[0].spans.extend(
                    span for span in scope_spans.spans if not span.parent_span_id
                )
                del scope_spans.spans[:]
                scope_spans.spans.extend(kept)


def ingest(endpoint: str, requests: list[bytes], spans: int) -> float:
    """Spans per second accepted over gRPC with 8 requests in flight."""
    with grpc.insecure_channel(endpoint) as channel:
        export = channel.unary_unary(EXPORT)
        pending: deque[grpc.Future] = deque()
        started = time.perf_counter()
        for body in requests:
            if len(pending) >= 8:
                pending.popleft().result(timeout=120)
            pending.append(export.future(body, timeout=120))
        while pending:
            pending.popleft().result(timeout=120)
        return spans / (time.perf_counter() - started)


def timed(client: httpx.Client, path: str, params: dict[str, str], repeat: int) -> list[float]:
    """Milliseconds per call, sorted."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return sorted(times)


def p(times: list[float], share: float) -> float:
    return times[min(len(times) - 1, int(len(times) * share))]


@dataclass
class Figures:
    """What one size measured, for the goals."""

    ingest: float
    memory: float
    search_p99: float
    search_first: float
    metrics_p99: float
    metrics_first: float


def measure(size: int, repeat: int, rng: random.Random, spread: bool = False) -> Figures:
    requests = build_requests(size, rng, spread)
    queries = {**SEARCHES, **METRICS}
    with (
        # The baseline full scan reads every stored trace: past Tempo's 30 s default at 500k spans on a busy
        # machine, it would be answered 504 and end the run.
        running_backend(size + 20_000, "--query-timeout-seconds", "600") as (process, tempo_url, endpoint),
        httpx.Client(base_url=tempo_url, timeout=300) as client,
    ):
        pid = process.pid
        client.get("/api/echo")  # the connection, before ingest
        idle = rss_kib(pid, "VmRSS")
        rate = ingest(endpoint, requests, size)
        after_ingest = (rss_kib(pid, "VmRSS") - idle) * 1024 / size
        first = {name: timed(client, path, params, 1)[0] for name, (path, params) in queries.items()}
        memory = (rss_kib(pid, "VmRSS") - idle) * 1024 / size
        full_scan = timed(client, *FULL_SCAN, 1)[0]
        print(
            f"\n== {size:,} spans stored: ingest {rate:,.0f} spans/s; memory per stored span (store and "
            f"index): {after_ingest:.0f} bytes after ingest, {memory:.0f} after the first queries; "
            f"baseline full scan {full_scan:.0f} ms"
        )
        p99s = {}
        for name, (path, params) in queries.items():
            times = timed(client, path, params, repeat)
            p99s[name] = p(times, 0.99)
            print(
                f"{name:34} first {first[name]:7.1f} ms  p50 {p(times, 0.5):7.1f} ms  "
                f"p99 {p99s[name]:7.1f} ms  p99/full scan {p99s[name] / full_scan:.3f}"
            )
    return Figures(
        ingest=rate,
        memory=max(after_ingest, memory),
        search_p99=max(p99s[name] for name in SEARCHES),
        search_first=max(first[name] for name in SEARCHES),
        metrics_p99=max(p99s[name] for name in METRICS),
        metrics_first=max(first[name] for name in METRICS),
    )


def report_goals(figures: Figures) -> None:
    """Which of the goals at 500k spans the figures meet."""
    print("\ngoals at 500k spans (here: the largest size measured):")
    for goal, met in (
        (
            f"searches, tags, tag values < 50 ms: p99 {figures.search_p99:.1f} ms, "
            f"first {figures.search_first:.1f} ms",
            max(figures.search_p99, figures.search_first) < 50,
        ),
        (
            f"metrics < 200 ms: p99 {figures.metrics_p99:.1f} ms, first {figures.metrics_first:.1f} ms",
            max(figures.metrics_p99, figures.metrics_first) < 200,
        ),
        (f"ingest >= 125,000 spans/s: {figures.ingest:,.0f}", figures.ingest >= 125_000),
        (f"memory per span <= 645 bytes: {figures.memory:.0f}", figures.memory <= 645),
    ):
        print(f"  {'met    ' if met else 'NOT met'}  {goal}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50000,200000,500000")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--spread",
        action="store_true",
        help="send each trace's root span in the next request (each trace written twice)",
    )
    args = parser.parse_args()
    rng = random.Random(7)
    figures = [measure(int(size), args.repeat, rng, args.spread) for size in args.sizes.split(",")]
    report_goals(figures[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
