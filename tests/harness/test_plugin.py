"""The pytest plugin, exercised with pytester: options, markers, fixtures, teardown checks, failure report."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]

INNER = """
import pytest
from hoptrace.harness import Trace
from hoptrace.harness.launch._trace_client import new_trace_id
from tests.harness.otlp import Services, emit_order

CHAIN = "api:SERVER > api:PRODUCER > worker:CONSUMER > worker:CLIENT > inventory:SERVER"

@pytest.fixture
def sdk(hoptrace_backend):
    services = Services(hoptrace_backend.otlp_grpc_endpoint)
    yield services
    services.shutdown()

@pytest.mark.hoptrace(timeout=10)
def test_complete(sdk, wait_for_trace):
    trace_id = new_trace_id()
    emit_order(sdk, trace_id, "00000000000000aa")
    trace: Trace = wait_for_trace(trace_id, until=CHAIN)
    trace.assert_attribute("tenant.id", "acme")

def test_teardown_check_reports_the_tree(sdk, expect_trace):
    trace_id = new_trace_id()
    emit_order(sdk, trace_id, "00000000000000aa")
    expect_trace(trace_id, "api:SERVER > api:PRODUCER > billing:CONSUMER")

@pytest.mark.hoptrace(timeout=10)
def test_plain_assert_gets_the_trace_in_the_report(sdk, wait_for_trace):
    trace_id = new_trace_id()
    emit_order(sdk, trace_id, "00000000000000aa", tenant="globex")
    trace = wait_for_trace(trace_id, until=CHAIN)
    assert len(trace) == 99
"""


@pytest.fixture(autouse=True)
def _inner_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the inner tests import tests.harness.otlp


def test_options_are_in_one_hoptrace_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["hoptrace end-to-end trace assertions:", "*--trace-backend=*", "*--tempo-url=*"]
    )
    assert "--hoptrace-keep" in result.stdout.str()


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.hoptrace(timeout=None):*"])


def test_fixtures_wait_check_at_teardown_and_report_the_tree(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", "--hoptrace-timeout=2")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    out = result.stdout.str()
    assert "1 of 1 expected trace(s) did not hold" in out
    assert "broken hop: api:PRODUCER > billing:CONSUMER" in out
    assert "hoptrace trace" in out  # the section with the tree of the trace the failing test fetched
    assert "tenant=globex" in out
