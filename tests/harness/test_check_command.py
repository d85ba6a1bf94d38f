"""``hoptrace check`` and ``hoptrace trace`` as a CI pipeline runs them, against ``hoptrace backend`` running
as its own process (reached by URL, as a real Tempo would be)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from hoptrace.harness.assertions._wait import wait_for_trace
from hoptrace.harness.launch._backends import Backend, open_backend
from hoptrace.harness.launch._trace_client import new_trace_id
from hoptrace.harness.tempo._client import TempoClient
from tests.harness.otlp import Services, emit_order

HOPTRACE = str(Path(sys.executable).parent / "hoptrace")
CHAIN = "api:SERVER > api:PRODUCER > worker:CONSUMER > worker:CLIENT > inventory:SERVER"


@pytest.fixture(scope="module")
def backend_process() -> Iterator[Backend]:
    with open_backend("embedded", subprocess_mode=True) as backend:
        yield backend


def _send_order(backend: Backend, open_spans_url: str | None) -> str:
    services = Services(backend.otlp_grpc_endpoint, open_spans_url)
    trace_id = new_trace_id()
    emit_order(services, trace_id, "00000000000000aa")
    services.shutdown()
    with TempoClient(backend.tempo_url) as client:
        wait_for_trace(client, trace_id, until=lambda t: len(t) == 7)
    return trace_id


@pytest.fixture(scope="module")
def sent_trace(backend_process: Backend) -> str:
    """A trace from services that report nothing when spans start, entered from caller span ...aa."""
    return _send_order(backend_process, None)


@pytest.fixture(scope="module")
def reported_trace(backend_process: Backend) -> str:
    """A trace whose services reported their spans as they started, entered from caller span ...aa."""
    return _send_order(backend_process, backend_process.open_spans_url)


def hoptrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOPTRACE, *args], capture_output=True, text=True, timeout=60)


def test_check_passes_and_writes_junit(backend_process: Backend, sent_trace: str, tmp_path: Path) -> None:
    junit = tmp_path / "out" / "hoptrace.xml"
    result = hoptrace(
        "check",
        "--tempo-url",
        backend_process.tempo_url,
        "--trace-id",
        sent_trace,
        "--expect-chain",
        CHAIN,
        "--expect-attr",
        "tenant.id=acme",
        "--expect-count",
        "inventory:SERVER=2",
        "--junit-xml",
        str(junit),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok: trace {sent_trace}, 7 spans" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "0")


def test_check_fails_with_the_broken_hop_in_output_and_junit(
    backend_process: Backend, sent_trace: str, tmp_path: Path
) -> None:
    junit = tmp_path / "hoptrace.xml"
    result = hoptrace(
        "check",
        "--tempo-url",
        backend_process.tempo_url,
        "--trace-id",
        sent_trace,
        "--timeout",
        "1",
        "--expect-chain",
        "api:SERVER > api:PRODUCER > billing:CONSUMER",
        "--expect-attr",
        "tenant.id=globex",
        "--junit-xml",
        str(junit),
    )
    assert result.returncode == 1
    assert "broken hop: api:PRODUCER > billing:CONSUMER" in result.stdout
    assert "7 of 7 span(s) lack it" in result.stdout
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert len(failures) == 2
    assert "broken hop" in (failures[0].get("message") or "")


def test_check_rejects_a_malformed_chain_saying_where(backend_process: Backend) -> None:
    result = hoptrace(
        "check",
        "--tempo-url",
        backend_process.tempo_url,
        "--trace-id",
        "1" * 32,
        "--expect-chain",
        "api:SERVER >",
    )
    assert result.returncode == 2
    assert "at column 13" in result.stderr


def test_check_unknown_trace_says_not_found(backend_process: Backend) -> None:
    trace_id = new_trace_id()
    result = hoptrace(
        "check", "--tempo-url", backend_process.tempo_url, "--trace-id", trace_id, "--timeout", "0.3"
    )
    assert result.returncode == 1
    assert f"trace {trace_id} not found at {backend_process.tempo_url} after 0.3 s" in result.stdout


def test_check_names_an_unreachable_backend() -> None:
    result = hoptrace("check", "--tempo-url", "http://127.0.0.1:9", "--trace-id", "1" * 32)
    assert result.returncode == 1
    assert "http://127.0.0.1:9 did not answer" in result.stderr


def test_trace_command_prints_the_tree(backend_process: Backend, sent_trace: str) -> None:
    result = hoptrace("trace", sent_trace, "--tempo-url", backend_process.tempo_url)
    assert result.returncode == 0
    assert "worker CONSUMER process orders" in result.stdout
    missing = hoptrace("trace", new_trace_id(), "--tempo-url", backend_process.tempo_url)
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def test_tempo_backend_by_url_attaches_without_starting_anything(backend_process: Backend) -> None:
    with open_backend(
        "tempo", tempo_url=backend_process.tempo_url, otlp_endpoint=backend_process.otlp_grpc_endpoint
    ) as tempo:
        assert (tempo.kind, tempo.tempo_url) == ("tempo-url", backend_process.tempo_url)
    with TempoClient(backend_process.tempo_url) as client:
        assert client.ready()  # left running: it was not ours


def test_check_passes_propagation_for_a_trace_started_by_the_callers_traceparent(
    backend_process: Backend, reported_trace: str
) -> None:
    url = backend_process.tempo_url
    given = hoptrace(
        "check", "--tempo-url", url, "--traceparent", f"00-{reported_trace}-00000000000000aa-01",
        "--expect-propagation", "--expect-chain", CHAIN,
    )  # fmt: skip
    assert given.returncode == 0, given.stdout + given.stderr
    assert f"ok: trace {reported_trace}, 7 spans" in given.stdout
    explicit = hoptrace(
        "check", "--tempo-url", url, "--trace-id", reported_trace, "--caller-span-id", "00000000000000aa",
        "--expect-propagation",
    )  # fmt: skip
    assert explicit.returncode == 0, explicit.stdout
    inferred = hoptrace("check", "--tempo-url", url, "--trace-id", reported_trace, "--expect-propagation")
    assert inferred.returncode == 0, inferred.stdout


def test_check_fails_fast_once_a_complete_trace_is_wrong(
    backend_process: Backend, reported_trace: str
) -> None:
    # --timeout far beyond hoptrace()'s own 60 s limit: only failing fast lets these return.
    url = backend_process.tempo_url
    wrong_caller = hoptrace(
        "check", "--tempo-url", url, "--traceparent", f"00-{reported_trace}-00000000000000bb-01",
        "--expect-propagation", "--timeout", "600",
    )  # fmt: skip
    assert wrong_caller.returncode == 1
    assert "orphan api:SERVER" in wrong_caller.stdout
    assert "is complete" in wrong_caller.stdout
    wrong_tenant = hoptrace(
        "check", "--tempo-url", url, "--trace-id", reported_trace, "--expect-attr", "tenant.id=globex",
        "--timeout", "600",
    )  # fmt: skip
    assert wrong_tenant.returncode == 1
    assert "7 of 7 span(s) lack it" in wrong_tenant.stdout


def test_check_rejects_a_malformed_traceparent_or_caller(backend_process: Backend) -> None:
    url = backend_process.tempo_url
    bad = hoptrace("check", "--tempo-url", url, "--traceparent", "00-abc-def-01")
    assert bad.returncode == 2
    assert "--traceparent wants 00-<32 hex trace id>" in bad.stderr
    caller = hoptrace("check", "--tempo-url", url, "--trace-id", "1" * 32, "--caller-span-id", "xyz")
    assert caller.returncode == 2
    assert "--caller-span-id wants 16 hex digits" in caller.stderr
