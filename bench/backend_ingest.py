"""Embedded backend: OTLP/gRPC ingest rate alone, under queries and with --db; trace-by-id latency;
memory per stored span.

Starts ``hoptrace backend`` as its own process (the sender gets the other core), sends pre-built
1000-span ExportTraceServiceRequests over gRPC with 8 in flight, then reads random traces back through
``/api/v2/traces/{id}``. The ingest rate is printed as a ratio of the rate at which this same machine
merely parses those requests with protobuf (upb), measured in the same run. In the same run it also
measures, against that backend, ingest of as many spans again while 4 loops search the stored spans
(ratio to ingest alone), and ingest into a second backend started with ``--db`` (ratio to the first).
Run:

    .venv/bin/python bench/backend_ingest.py [--spans 300000] [--reads 2000] [--query-latency SIZES]

It ends with ``bench/backend_query_latency.py``'s report (searches, tags, tag values and a metrics
query at 50k, 200k and 500k stored spans); ``--query-latency ""`` skips it.

Goals: ingest >= 100,000 spans/s on a 2-core machine; trace-by-id p99 <= 10 ms with >= 200,000 spans;
ingest under 4 query loops >= 0.5 x ingest alone; ingest with --db >= 0.5 x ingest without.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
QUERY_LOOPS = 4
QUERIES = (
    "{ span.http.response.status_code = 500 }",  # matches nothing: every stored trace is inspected
    '{ name =~ "SELECT orders 9.*" && resource.service.name = "svc-3" }',
    "{ kind = server } >> { kind = client }",
    '{ span.tenant.id = "acme" } | count() > 5',
)
SPANS_PER_REQUEST = 1000
SPANS_PER_TRACE = 10
IN_FLIGHT = 8


def build_requests(total_spans: int, rng: random.Random) -> tuple[list[bytes], list[str]]:
    """Requests of 1000 spans: 100 traces of 10 spans (server root, children), 6 attributes each."""
    requests: list[bytes] = []
    trace_ids: list[str] = []
    now = time.time_ns()
    for request_index in range(total_spans // SPANS_PER_REQUEST):
        message = ExportTraceServiceRequest()
        resource_spans = message.resource_spans.add()
        for key, value in (("service.name", f"svc-{request_index % 5}"), ("host.name", "bench-host")):
            resource_spans.resource.attributes.add(key=key, value=AnyValue(string_value=value))
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "bench"
        for _ in range(SPANS_PER_REQUEST // SPANS_PER_TRACE):
            trace_id = rng.randbytes(16)
            trace_ids.append(trace_id.hex())
            root_id = rng.randbytes(8)
            for index in range(SPANS_PER_TRACE):
                span = scope_spans.spans.add()
                span.trace_id = trace_id
                span.span_id = root_id if index == 0 else rng.randbytes(8)
                if index:
                    span.parent_span_id = root_id
                span.name = "GET /api/orders/{id}" if index == 0 else f"SELECT orders {index}"
                span.kind = Span.SPAN_KIND_SERVER if index == 0 else Span.SPAN_KIND_CLIENT
                span.start_time_unix_nano = now + index * 1000
                span.end_time_unix_nano = now + index * 1000 + 250_000
                for key, value in (
                    ("http.request.method", "GET"),
                    ("http.route", "/api/orders/{id}"),
                    ("tenant.id", "acme"),
                    ("db.system", "postgresql"),
                ):
                    span.attributes.add(key=key, value=AnyValue(string_value=value))
                span.attributes.add(key="http.response.status_code", value=AnyValue(int_value=200))
                span.attributes.add(key="retry", value=AnyValue(bool_value=False))
        requests.append(message.SerializeToString())
    return requests, trace_ids


def parse_rate(requests: list[bytes]) -> float:
    """Spans per second that protobuf (upb) alone parses: the same-run baseline."""
    started = time.perf_counter()
    for body in requests:
        ExportTraceServiceRequest.FromString(body)
    return len(requests) * SPANS_PER_REQUEST / (time.perf_counter() - started)


def ingest_rate(endpoint: str, requests: list[bytes]) -> float:
    """Spans per second accepted over gRPC with IN_FLIGHT requests outstanding."""
    with grpc.insecure_channel(endpoint) as channel:
        export = channel.unary_unary(EXPORT)
        export(requests[0], timeout=30)  # connect and warm up outside the timed part
        pending: deque[grpc.Future] = deque()
        started = time.perf_counter()
        for body in requests[1:]:
            if len(pending) >= IN_FLIGHT:
                pending.popleft().result(timeout=60)
            pending.append(export.future(body, timeout=60))
        while pending:
            pending.popleft().result(timeout=60)
        elapsed = time.perf_counter() - started
    return (len(requests) - 1) * SPANS_PER_REQUEST / elapsed


def rss_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


@contextmanager
def running_backend(spans: int, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``hoptrace backend`` on free ports, holding ``spans``; yields (process, tempo URL, gRPC endpoint)."""
    hoptrace = str(Path(sys.executable).parent / "hoptrace")
    command = [hoptrace, "backend", "--http-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0"]
    command += ["--max-spans", str(spans), "--max-bytes", str(4 * 1024**3), *extra]
    backend = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert backend.stdout is not None
        line = backend.stdout.readline()
        match = re.search(r"tempo_api=(\S+) otlp_grpc=http://(\S+) ", line)
        if match is None:
            raise SystemExit(f"backend did not start: {line!r}")
        yield backend, match[1], match[2]
    finally:
        backend.send_signal(signal.SIGTERM)
        backend.wait(timeout=60)


def ingest_under_queries(tempo_url: str, endpoint: str, requests: list[bytes]) -> tuple[float, int]:
    """Ingest rate while QUERY_LOOPS threads search without pause; also the searches answered."""
    stop = threading.Event()
    answered = [0]

    def query_loop(offset: int) -> None:
        with httpx.Client(base_url=tempo_url, timeout=120) as client:
            index = offset
            while not stop.is_set():
                response = client.get("/api/search", params={"q": QUERIES[index % len(QUERIES)]})
                assert response.status_code in (200, 504), response.text
                answered[0] += 1
                index += 1

    loops = [threading.Thread(target=query_loop, args=(i,)) for i in range(QUERY_LOOPS)]
    for loop in loops:
        loop.start()
    try:
        rate = ingest_rate(endpoint, requests)
    finally:
        stop.set()
        for loop in loops:
            loop.join()
    return rate, answered[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=300_000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--query-latency", default="50000,200000,500000", help="sizes; empty to skip")
    args = parser.parse_args()
    rng = random.Random(42)
    requests, trace_ids = build_requests(args.spans, rng)
    print(
        f"built {len(requests)} requests of {SPANS_PER_REQUEST} spans, {len(requests[0]) / 1024:.0f} KiB each"
    )

    more_requests, _ = build_requests(args.spans, rng)
    with running_backend(args.spans * 3) as (backend, tempo_url, grpc_endpoint):
        rss_before = rss_kib(backend.pid, "VmRSS")

        baseline = statistics.median(parse_rate(requests) for _ in range(3))
        ingested = ingest_rate(grpc_endpoint, requests)
        stored = len(requests) * SPANS_PER_REQUEST
        peak = rss_kib(backend.pid, "VmHWM")

        latencies = []
        with httpx.Client(base_url=tempo_url, timeout=120) as client:
            # Service-graph pairing is deferred to the scrape (up to a bound): time it, to report it.
            started = time.perf_counter()
            metrics = client.get("/metrics").text
            pairing = time.perf_counter() - started
            assert "traces_service_graph_request_total" in metrics
            for trace_id in rng.sample(trace_ids, 50):  # warm up connections and code paths
                client.get(f"/api/v2/traces/{trace_id}")
            for _ in range(args.reads):
                trace_id = rng.choice(trace_ids)
                started = time.perf_counter()
                response = client.get(f"/api/v2/traces/{trace_id}")
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        under_queries, searches = ingest_under_queries(tempo_url, grpc_endpoint, more_requests)

    with (
        tempfile.TemporaryDirectory() as database,
        running_backend(args.spans * 3, "--db", database) as (
            _,
            _,
            grpc_endpoint,
        ),
    ):
        with_db = ingest_rate(grpc_endpoint, requests)
        db_bytes = sum(path.stat().st_size for path in Path(database).iterdir())

    print(f"protobuf parse only (baseline): {baseline:,.0f} spans/s")
    print(f"ingest over OTLP/gRPC, {IN_FLIGHT} in flight: {ingested:,.0f} spans/s")
    print(
        f"ingest / parse ratio: {ingested / baseline:.3f}  "
        f"(goal: >= 100,000 spans/s on {os.cpu_count()} cores)"
    )
    print(
        f"first /metrics scrape after ingest (pairs the spans still queued for the service graph): "
        f"{pairing:.2f} s; ingest including pairing: {stored / (stored / ingested + pairing):,.0f} spans/s"
    )
    print(
        f"trace-by-id with {stored:,} spans stored, {args.reads} reads: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
        "(goal: p99 <= 10 ms)"
    )
    print(
        f"ingest while {QUERY_LOOPS} loops search {stored:,} stored spans ({searches} searches answered): "
        f"{under_queries:,.0f} spans/s; ratio to ingest alone: {under_queries / ingested:.2f} (goal: >= 0.5)"
    )
    print(
        f"ingest with --db (request log, {db_bytes / 1024**2:.0f} MiB on disk): {with_db:,.0f} spans/s; "
        f"ratio to ingest without: {with_db / ingested:.2f} (goal: >= 0.5)"
    )
    print(
        f"peak memory per stored span: {(peak - rss_before) * 1024 / stored:.0f} bytes "
        f"(backend RSS {rss_before / 1024:.0f} MiB idle, peak {peak / 1024:.0f} MiB)"
    )
    if args.query_latency:
        from backend_query_latency import measure, report_goals  # bench/ is the script's directory

        rng = random.Random(7)
        figures = [measure(int(size), 30, rng) for size in args.query_latency.split(",")]
        report_goals(figures[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
