"""With ``--db``, every acknowledged span survives SIGTERM and SIGKILL under full-speed ingest."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections import deque
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hoptrace.harness import poll_until

from .backend_process import backend_process

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS_PER_TRACE = 200
IN_FLIGHT = 8
MAX_REQUESTS = 3000
"""A bound on what one test sends, whatever happens."""


def _trace_request(trace_id: bytes) -> bytes:
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "durable"
    spans = resource_spans.scope_spans.add().spans
    for index in range(SPANS_PER_TRACE):
        spans.add(trace_id=trace_id, span_id=(index + 1).to_bytes(8, "big"), name=f"span {index}")
    data: bytes = message.SerializeToString()
    return data


def _send_until_refused(endpoint: str, acknowledged: list[bytes], done: threading.Event) -> None:
    """Export one trace per request, IN_FLIGHT at a time, recording each acknowledged trace, until the
    backend stops answering."""
    rng = random.Random(os.getpid())
    with grpc.insecure_channel(endpoint) as channel:
        export = channel.unary_unary(EXPORT)
        pending: deque[tuple[bytes, grpc.Future]] = deque()
        try:
            for _ in range(MAX_REQUESTS):
                if len(pending) >= IN_FLIGHT:
                    trace_id, future = pending.popleft()
                    future.result(timeout=30)
                    acknowledged.append(trace_id)
                trace_id = rng.randbytes(16)
                pending.append((trace_id, export.future(_trace_request(trace_id), timeout=30)))
        except grpc.RpcError:
            pass  # the backend went away; what it acknowledged before is what counts
        finally:
            for trace_id, future in pending:
                if future.exception(timeout=30) is None:
                    acknowledged.append(trace_id)
            done.set()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
def test_every_acknowledged_span_survives_a_stop_under_full_speed_ingest(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    database = tmp_path / "db"
    acknowledged: list[bytes] = []
    done = threading.Event()
    with backend_process(tmp_path, "--db", str(database)) as first:
        sender = threading.Thread(target=_send_until_refused, args=(first.otlp_grpc, acknowledged, done))
        sender.start()
        try:
            poll_until(lambda: len(acknowledged) >= 150 or done.is_set(), timeout=60, what="ingest")
            first.process.send_signal(stop_signal)
        finally:
            sender.join(timeout=120)
        first.process.wait(timeout=30)
    assert len(acknowledged) >= 150

    with (
        backend_process(tmp_path, "--db", str(database)) as second,
        httpx.Client(base_url=second.tempo_url, timeout=30) as client,
    ):
        missing = []
        for trace_id in acknowledged:
            response = client.get(f"/api/v2/traces/{trace_id.hex()}")
            spans = (
                sum(
                    len(scope["spans"])
                    for batch in response.json()["trace"]["resourceSpans"]
                    for scope in batch["scopeSpans"]
                )
                if response.status_code == 200
                else 0
            )
            if spans != SPANS_PER_TRACE:
                missing.append((trace_id.hex(), spans))
    assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged traces incomplete"
