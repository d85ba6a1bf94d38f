"""The pytest plugin on real multi-service scenarios (pytester): the demo's api, worker and inventory run
as their own processes under ``hoptrace run``, with a real RabbitMQ and the embedded backend.

One scenario keeps propagation. In the other the worker is misconfigured on purpose
(``OTEL_PROPAGATORS=none``: it cannot read the context the api put on the message), and the failure must
name the broken hop."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = """
import sys
import pytest

QUEUE_CHAIN = "api:SERVER > api:PRODUCER > worker:CONSUMER > worker:CLIENT > inventory:SERVER"

def start_demo(traced_services, rabbitmq, worker_env=None):
    common = {"AMQP_URL": rabbitmq.url, "DEMO_QUEUE": rabbitmq.unique_name("orders")}
    inventory = traced_services.start_asgi("inventory", "hoptrace.harness.demo.inventory:app", env=common)
    common["DEMO_INVENTORY_URL"] = inventory.url
    traced_services.start(
        "worker", [sys.executable, "-m", "hoptrace.harness.demo.worker"], ready_log="worker ready",
        env={**common, **(worker_env or {})},
    )
    api_env = {**common, "HOPTRACE_TENANT_HEADER": "X-Tenant-ID"}
    return traced_services.start_asgi("api", "hoptrace.harness.demo.api:app", env=api_env)

def test_propagation_holds_across_http_and_queue(
    traced_services, rabbitmq, trace_client, wait_for_trace, expect_trace
):
    api = start_demo(traced_services, rabbitmq)
    response = trace_client.post(f"{api.url}/orders", json={"item": "widget"}, tenant="acme")
    assert response.status_code == 202
    trace = wait_for_trace(response, until=QUEUE_CHAIN)
    trace.assert_propagation().assert_single_root().assert_no_orphans()
    trace.assert_chain("api:SERVER > api:CLIENT > inventory:SERVER")
    trace.assert_attribute("tenant.id", "acme")
    edges = {("user", "api"), ("api", "inventory"), ("api", "worker"), ("worker", "inventory")}
    trace.assert_service_edges(edges, exact=True)
    other = trace_client.post(f"{api.url}/orders", json={"item": "gadget"}, tenant="globex")
    expect_trace(other, QUEUE_CHAIN, lambda t: t.assert_attribute("tenant.id", "globex"))

@pytest.mark.hoptrace(timeout=3)
def test_worker_that_drops_the_context_breaks_the_chain(
    traced_services, rabbitmq, trace_client, wait_for_trace
):
    api = start_demo(traced_services, rabbitmq, worker_env={"OTEL_PROPAGATORS": "none"})
    response = trace_client.post(f"{api.url}/orders", json={"item": "widget"}, tenant="acme")
    assert response.status_code == 202
    wait_for_trace(response, until=QUEUE_CHAIN)
"""


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def test_plugin_passes_a_good_trace_and_names_the_broken_hop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "test_worker_that_drops_the_context_breaks_the_chain" in out
    assert "incomplete after 3.0 s" in out
    assert "broken hop: api:PRODUCER > worker:CONSUMER" in out
    assert 'missing: worker:CONSUMER below api:PRODUCER "publish orders-' in out
    assert "hoptrace service logs" in out  # the services' logs are in the failure report
