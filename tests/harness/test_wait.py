"""wait_for_trace: returns once expectations hold and spans stopped arriving; explains timeouts."""

from __future__ import annotations

import threading

import pytest

from hoptrace.harness._errors import InvalidExpression, TraceIncomplete, TraceNotFound
from hoptrace.harness.assertions._wait import quiet_period_for, wait_for_search, wait_for_trace
from hoptrace.harness.launch._trace_client import new_trace_id
from hoptrace.harness.tempo._client import TempoClient
from tests.harness.otlp import EXPORT_DELAY_MS, Services, emit_order

CHAIN = "api:SERVER > api:PRODUCER > worker:CONSUMER > worker:CLIENT > inventory:SERVER"


def test_waits_for_spans_sent_after_the_wait_started(client: TempoClient, sdk_services: Services) -> None:
    trace_id = new_trace_id()
    started = threading.Event()

    def send_when_waiting() -> None:
        started.wait(10)
        emit_order(sdk_services, trace_id, "00000000000000aa")

    sender = threading.Thread(target=send_when_waiting)
    sender.start()
    started.set()
    trace = wait_for_trace(
        client, trace_id, until=[CHAIN, lambda t: t.assert_span_count("*:SERVER", exactly=3)], timeout=20
    )
    sender.join()
    assert len(trace) == 7


def test_unknown_trace_times_out_naming_what_the_backend_holds(client: TempoClient) -> None:
    trace_id = new_trace_id()
    with pytest.raises(TraceNotFound, match=f"trace {trace_id} not found at {client.base_url} after 0.3 s"):
        wait_for_trace(client, trace_id, timeout=0.3)


def test_not_found_listing_names_the_root_of_a_trace_entered_from_a_caller(
    client: TempoClient, sdk_services: Services
) -> None:
    held = new_trace_id()
    emit_order(sdk_services, held, "00000000000000aa")
    wait_for_trace(client, held, until=CHAIN, timeout=20)
    with pytest.raises(TraceNotFound) as info:
        wait_for_trace(client, new_trace_id(), timeout=0.3)
    assert f"{held}  api  POST /orders (called by span 00000000000000aa)" in str(info.value)
    assert "root span not yet received" not in str(info.value)


def test_incomplete_trace_times_out_with_the_tree_and_the_reason(
    client: TempoClient, sdk_services: Services
) -> None:
    trace_id = new_trace_id()
    emit_order(sdk_services, trace_id, "00000000000000aa")
    with pytest.raises(TraceIncomplete) as info:
        wait_for_trace(client, trace_id, until="api:SERVER > api:PRODUCER > billing:CONSUMER", timeout=2)
    text = str(info.value)
    assert f"trace {trace_id} incomplete after 2.0 s" in text
    assert "broken hop: api:PRODUCER > billing:CONSUMER" in text
    assert "worker CONSUMER process orders" in text


def test_quiet_period_follows_the_export_delay() -> None:
    assert quiet_period_for(EXPORT_DELAY_MS) == pytest.approx(0.095)
    assert quiet_period_for(1000) == pytest.approx(1.52)


def test_search_wait_finds_the_trace_by_traceql(client: TempoClient, sdk_services: Services) -> None:
    trace_id = new_trace_id()
    emit_order(sdk_services, trace_id, "00000000000000aa", tenant="initech")
    hits = wait_for_search(client, '{ span.tenant.id = "initech" && kind = consumer }', timeout=10)
    assert [hit.trace_id for hit in hits] == [trace_id]
    assert len(hits[0].matched_span_ids) == 1  # the worker's CONSUMER span
    assert "tenant.id" in client.tags()
    assert "initech" in client.tag_values("span.tenant.id")


def test_search_wait_reports_what_it_found(client: TempoClient) -> None:
    with pytest.raises(TraceNotFound, match="matched 0 trace"):
        wait_for_search(client, '{ resource.service.name = "nobody-here" }', timeout=0.2)


def test_bad_traceql_is_reported_with_the_servers_reason(client: TempoClient) -> None:
    with pytest.raises(InvalidExpression, match="TraceQL rejected"):
        client.search("{ kind = }")
