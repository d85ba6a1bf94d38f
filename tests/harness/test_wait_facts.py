"""wait_for_trace decides completeness from facts: spans reported as started and not ended are waited for,
hops to started services must be answered, and a timeout names what is still running, never propagation."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.trace import SpanKind

from hoptrace.harness import Service, TraceAssertionError, TraceIncomplete, poll_until, wait_for_trace
from hoptrace.harness.assertions._completeness import Topology
from hoptrace.harness.launch._backends import Backend
from hoptrace.harness.launch._trace_client import new_trace_id
from hoptrace.harness.tempo._client import TempoClient
from tests.harness.otlp import Services, emit_order, entry

ENTRY = "00000000000000aa"


def _started(client: TempoClient, trace_id: str, count: int) -> None:
    poll_until(lambda: len(client.started_spans(trace_id) or []) >= count, timeout=10, what="open records")


def test_a_span_still_running_is_waited_for_past_any_quiet_period(
    client: TempoClient, reporting_services: Services
) -> None:
    trace_id = new_trace_id()
    api, worker = reporting_services.tracer("api"), reporting_services.tracer("worker")
    release = threading.Event()
    with entry(trace_id, ENTRY), api.start_as_current_span("POST /orders", kind=SpanKind.SERVER):
        consumer = worker.start_span("process orders", kind=SpanKind.CONSUMER)
    _started(client, trace_id, 2)

    def end_later() -> None:
        release.wait(10)
        consumer.end()

    thread = threading.Thread(target=end_later)
    thread.start()
    # The api's span is exported and then nothing arrives for far longer than the old 95 ms quiet period.
    poll_until(lambda: len(client.get_trace(trace_id) or []) == 1, timeout=10, what="the api span")
    outcome: list[object] = []
    waiter = threading.Thread(target=lambda: outcome.append(wait_for_trace(client, trace_id, timeout=20)))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and not outcome  # still waiting: the consumer has not ended
    release.set()
    waiter.join(20)
    thread.join()
    assert [span.name for span in outcome[0]] == ["POST /orders", "process orders"]  # type: ignore[attr-defined]


def test_timeout_names_the_running_span_and_does_not_blame_propagation(
    client: TempoClient, reporting_services: Services
) -> None:
    trace_id = new_trace_id()
    api, worker = reporting_services.tracer("api"), reporting_services.tracer("worker")
    with (
        entry(trace_id, ENTRY),
        api.start_as_current_span("POST /orders", kind=SpanKind.SERVER),
        api.start_as_current_span("publish orders", kind=SpanKind.PRODUCER),
    ):
        consumer = worker.start_span("process orders", kind=SpanKind.CONSUMER)
    try:
        with pytest.raises(TraceIncomplete) as info:
            wait_for_trace(client, trace_id, until=lambda t: t.assert_propagation(), timeout=1.5)
    finally:
        consumer.end()
    text = str(info.value)
    assert "its work has not finished" in text
    assert f'worker CONSUMER span {consumer.get_span_context().span_id:016x} "process orders" started' in text
    assert "has not ended" in text
    assert "the callee started a new trace" not in text


def test_a_client_call_to_a_started_service_waits_for_its_server_span(
    backend: Backend, client: TempoClient, reporting_services: Services, sdk_services: Services
) -> None:
    # The inventory reports nothing (a plain SDK service), so only the hop rule knows its span is due.
    trace_id = new_trace_id()
    api = reporting_services.tracer("api")
    attributes = {"server.address": "127.0.0.1", "server.port": 8123, "http.response.status_code": 200}
    with (
        entry(trace_id, ENTRY),
        api.start_as_current_span("POST /orders", kind=SpanKind.SERVER),
        api.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes=attributes) as call,
    ):
        context = call.get_span_context()
    inventory = Service("inventory", process=None, url="http://127.0.0.1:8123")  # type: ignore[arg-type]
    with pytest.raises(
        TraceIncomplete,
        match=r'api CLIENT "GET" \(span \w+\) to inventory \(127.0.0.1:8123\) '
        r"has no SERVER child yet",
    ):
        wait_for_trace(client, trace_id, timeout=1.0, services=[inventory])
    with entry(trace_id, f"{context.span_id:016x}"):
        sdk_services.tracer("inventory").start_span("GET /stock/{item}", kind=SpanKind.SERVER).end()
    trace = wait_for_trace(client, trace_id, timeout=10, services=[inventory])
    assert [span.service_name for span in trace] == ["api", "api", "inventory"]


def test_a_message_to_a_queue_a_started_service_consumes_waits_for_its_consumer(
    client: TempoClient, reporting_services: Services
) -> None:
    trace_id = new_trace_id()
    api = reporting_services.tracer("api")
    published = {"messaging.destination.name": "orders-7"}
    with (
        entry(trace_id, ENTRY),
        api.start_as_current_span("POST /orders", kind=SpanKind.SERVER),
        api.start_as_current_span("publish orders", kind=SpanKind.PRODUCER, attributes=published),
    ):
        pass
    worker = Service("worker", process=None, consumes=("orders-7",))  # type: ignore[arg-type]
    with pytest.raises(TraceIncomplete, match="to queue orders-7 \\(consumed by worker\\) has no CONSUMER"):
        wait_for_trace(client, trace_id, timeout=1.0, services=[worker])


def test_fail_fast_raises_once_a_complete_trace_does_not_hold(
    client: TempoClient, reporting_services: Services
) -> None:
    trace_id = new_trace_id()
    emit_order(reporting_services, trace_id, ENTRY)
    wait_for_trace(client, trace_id, entry_span_id=ENTRY, timeout=20)
    wrong = "api:SERVER > billing:CONSUMER"
    with pytest.raises(TraceAssertionError, match="is complete and does not hold"):
        wait_for_trace(client, trace_id, until=wrong, entry_span_id=ENTRY, timeout=30, fail_fast=True)
    # Without the caller's span id it is inferred: the one unknown parent of a trace without a root.
    with pytest.raises(TraceAssertionError, match="broken hop: api:SERVER > billing:CONSUMER"):
        wait_for_trace(client, trace_id, until=wrong, infer_entry=True, timeout=30, fail_fast=True)


def test_spans_that_nobody_reported_fall_back_to_the_quiet_period(
    client: TempoClient, sdk_services: Services
) -> None:
    trace_id = new_trace_id()
    emit_order(sdk_services, trace_id, ENTRY)
    trace = wait_for_trace(client, trace_id, entry_span_id=ENTRY, timeout=20)
    assert len(trace) >= 1  # returned by the old rule, without facts; nothing hangs


def test_topology_leaves_out_services_started_untraced() -> None:
    traced = Service("api", process=None, url="http://127.0.0.1:8001", consumes=("q",))  # type: ignore[arg-type]
    bare = Service("legacy", process=None, url="http://127.0.0.1:8002", traced=False)  # type: ignore[arg-type]
    topology = Topology.of([traced, bare])
    assert (topology.http_ports, topology.queues) == ({8001: "api"}, {"q": "api"})
