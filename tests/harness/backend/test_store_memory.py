"""``--max-bytes`` counts the memory the stored spans really take, not just their protobuf bytes."""

from __future__ import annotations

import gc
import tracemalloc
from types import SimpleNamespace

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hoptrace.harness.backend import StoreLimits, TraceStore, _receiver
from hoptrace.harness.backend._receiver import Receiver
from hoptrace.harness.backend._span_keys import SpanKeys


def many_traces_requests(traces: int, spans_per_trace: int) -> list[bytes]:
    """Requests of 100 traces each, ``traces`` in all, with distinct trace ids."""
    bodies = []
    for first in range(0, traces, 100):
        message = ExportTraceServiceRequest()
        resource_spans = message.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name").value.string_value = "svc"
        spans = resource_spans.scope_spans.add().spans
        for trace in range(first, first + 100):
            for index in range(spans_per_trace):
                spans.add(
                    trace_id=(trace + 1).to_bytes(16, "big"),
                    span_id=(index + 1).to_bytes(8, "big"),
                    name="op",
                )
        bodies.append(message.SerializeToString())
    return bodies


@pytest.mark.parametrize("spans_per_trace", [1, 10])
def test_counted_bytes_match_the_memory_the_spans_take(
    spans_per_trace: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store's own memory: the trace index the receiver feeds is not counted (bench/ measures both).
    monkeypatch.setattr(_receiver, "index_for", lambda _: SimpleNamespace(span_keys=SpanKeys()))
    monkeypatch.setattr(_receiver, "poke", lambda _: None)
    store = TraceStore(StoreLimits(max_spans=10**7, max_bytes=10**10))
    receiver = Receiver(store)
    bodies = many_traces_requests(20_000 // spans_per_trace, spans_per_trace)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for body in bodies:
            receiver.export_protobuf(body)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    counted = store.stats().bytes
    assert store.stats().spans == 20_000
    assert 0.9 * used <= counted <= 1.5 * used, (counted, used)
