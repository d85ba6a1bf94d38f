"""``wait_for_trace(response)`` without ``until=`` never returns a partial trace: fresh shops (api, an httpx
hop to the inventory, a RabbitMQ worker whose first message is deliberately slow), many waits, with the CPU
loaded by a busy process beside them. The small version of ``bench/harness_wait.py`` (50 shops x 300
waits); it runs the plugin as a user does (pytester, in its own process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

SHOPS, WAITS_PER_SHOP, FIRST_MESSAGE_DELAY_MS = 3, 4, 400

INNER = f"""
import pytest
from hoptrace.harness.demo import HTTP_CHAIN, QUEUE_CHAIN, SPANS_PER_ORDER, start_demo_shop

@pytest.mark.parametrize("shop_number", range({SHOPS}))
def test_every_trace_of_a_fresh_shop_is_complete(
    shop_number, traced_services, rabbitmq, trace_client, wait_for_trace
):
    shop = start_demo_shop(
        traced_services, rabbitmq.url, rabbitmq.unique_name("orders"),
        first_message_delay_ms={FIRST_MESSAGE_DELAY_MS},
    )
    for _ in range({WAITS_PER_SHOP}):
        response = trace_client.post(f"{{shop.api.url}}/orders", json={{"item": "widget"}}, tenant="acme")
        assert response.status_code == 202
        trace = wait_for_trace(response)
        assert len(trace) == SPANS_PER_ORDER, trace.render()
        trace.assert_chain(HTTP_CHAIN).assert_chain(QUEUE_CHAIN).assert_propagation()
"""


def test_fresh_shops_under_cpu_load_never_give_a_partial_trace(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_stress=INNER)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hoptrace-timeout=30")
    finally:
        busy.kill()
        busy.wait()
    result.assert_outcomes(passed=SHOPS)
