"""The open-span reporter: off unless HOPTRACE_OPEN_SPANS_URL is set; under ``hoptrace run`` with it set,
a span is reported while it is still running; a bad URL is one warning and the service runs on."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource

from hoptrace.harness import ServiceLauncher, poll_until
from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.tracing._open_spans import open_span_reporter_from_environment

RESOURCE = Resource.create({"service.name": "api"})
LONG_SPAN = textwrap.dedent(
    """
    import signal
    from opentelemetry import trace
    with trace.get_tracer("t").start_as_current_span("long job") as span:
        print(format(span.get_span_context().trace_id, "032x"), flush=True)
        signal.pause()  # runs until the test stops it
    """
)


@pytest.fixture(scope="module")
def backend() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend() as running:
        yield running


def test_off_unless_the_variable_is_set() -> None:
    assert open_span_reporter_from_environment({}, RESOURCE) is None


def test_a_bad_url_is_one_warning_and_no_reporter(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hoptrace.tracing"):
        reporter = open_span_reporter_from_environment({"HOPTRACE_OPEN_SPANS_URL": "ftp://x"}, RESOURCE)
    assert reporter is None
    assert [r.getMessage() for r in caplog.records] == [
        "hoptrace: HOPTRACE_OPEN_SPANS_URL must be an http(s) URL, got 'ftp://x'; "
        "spans that are still running are not reported"
    ]


def test_hoptrace_run_reports_a_span_while_it_runs(backend: EmbeddedBackend) -> None:
    with ServiceLauncher(backend.otlp_grpc_endpoint, open_spans_url=backend.open_spans_url) as launcher:
        service = launcher.start(
            "job-runner", [sys.executable, "-c", LONG_SPAN], ready_log=r"(?m)^[0-9a-f]{32}$"
        )
        trace_id = re.findall(r"(?m)^[0-9a-f]{32}$", service.log())[0]
        records = poll_until(lambda: backend.open_spans.started(trace_id), timeout=10, what="a record")
        assert [(r.name, r.service_name) for r in records] == [("long job", "job-runner")]
        assert backend.store.get_trace(trace_id) == []  # still running: nothing finished was exported
    launcher.remove_logs()
