"""1,000 RPC calls from separate clients, each with a server-named reply queue: span names and RED series
stay bounded, on the server and on the clients.

The clients are separate AMQP clients (own channel, own exclusive ``amq.gen-…`` reply queue, own
correlation ids), 500 in each of two processes: what makes names unbounded is the reply queue each client
gets from the broker, not the process it lives in, and a thousand interpreters would cost CI minutes.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from hoptrace.harness import ServiceLauncher, Span, free_port, poll_until
from hoptrace.harness.backend import EmbeddedBackend

CLIENT_PROCESSES = 2
CLIENTS_PER_PROCESS = 500
SERIES = re.compile(r"^traces_spanmetrics_calls_total\{(.*)\} (\S+)$")


@pytest.fixture
def rpc() -> Iterator[tuple[EmbeddedBackend, dict[str, str], str]]:
    """Run the server and the client processes to completion; yield the backend, each service's /metrics
    URL and the request queue's name."""
    queue = f"rpc-requests-{uuid.uuid4().hex}"
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/")
    app = [sys.executable, "-m", "tests.tracing.apps.rpc"]
    metrics: dict[str, str] = {}
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint) as launcher:
        cwd = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

        def start(name: str, argv: list[str], ready: str) -> None:
            port = free_port()
            env = {"AMQP_URL": amqp_url, "HOPTRACE_METRICS_PORT": str(port)}
            launcher.start(name, [*app, *argv], ready_log=ready, env=env, cwd=cwd, timeout=240)
            metrics[name] = f"http://127.0.0.1:{port}/metrics"

        start("rpc-server", ["server", queue], r"^ready$")
        for number in range(CLIENT_PROCESSES):
            start(f"rpc-clients-{number}", ["clients", queue, str(CLIENTS_PER_PROCESS)], r"^done \d+$")
        yield backend, metrics, queue


def _calls(metrics_url: str) -> dict[tuple[str, str], float]:
    """{(span_name, span_kind): calls} of one service's /metrics."""
    found: dict[tuple[str, str], float] = {}
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        match = SERIES.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            key = (labels.get("span_name", "<overflow>"), labels.get("span_kind", ""))
            found[key] = found.get(key, 0) + float(match.group(2))
    return found


def test_a_thousand_rpc_clients_add_no_span_names_and_no_red_series(
    rpc: tuple[EmbeddedBackend, dict[str, str], str],
) -> None:
    backend, metrics, queue = rpc
    calls = CLIENT_PROCESSES * CLIENTS_PER_PROCESS
    requests = "rpc-requests-{id}"  # the per-run id in the queue name is folded too
    server = {
        ("process " + requests, "SPAN_KIND_CONSUMER"): calls,
        ("publish (anonymous)", "SPAN_KIND_PRODUCER"): calls,
    }
    poll_until(
        lambda: _calls(metrics["rpc-server"]) == server,
        timeout=60,
        what=f"the server's /metrics to count {server}",
        on_timeout=lambda: str(_calls(metrics["rpc-server"])),
    )
    client = {
        ("publish " + requests, "SPAN_KIND_PRODUCER"): CLIENTS_PER_PROCESS,
        ("process (anonymous)", "SPAN_KIND_CONSUMER"): CLIENTS_PER_PROCESS,
    }
    for number in range(CLIENT_PROCESSES):
        assert _calls(metrics[f"rpc-clients-{number}"]) == client

    def all_exported() -> dict[str, int] | None:
        names = _span_names(backend)
        return names if sum(names.values()) >= 4 * calls else None

    names = poll_until(all_exported, timeout=60, what=f"{4 * calls} spans in the backend")
    assert names == {
        "process " + requests: calls,
        "publish (anonymous)": calls,
        "publish " + requests: calls,
        "process (anonymous)": calls,
    }
    reply_queues = {
        span.attributes["messaging.destination.name"] for span in _spans(backend, "process (anonymous)")
    }
    assert len(reply_queues) == calls and all(name.startswith("amq.gen-") for name in reply_queues)
    assert {
        span.attributes["messaging.destination.name"] for span in _spans(backend, "publish " + requests)
    } == {queue}


def _all_spans(backend: EmbeddedBackend) -> list[Span]:
    store = backend.store
    return [span for trace_id, records in store.snapshot() for span in store.decoded(trace_id, records)]


def _span_names(backend: EmbeddedBackend) -> dict[str, int]:
    names: dict[str, int] = {}
    for span in _all_spans(backend):
        names[span.name] = names.get(span.name, 0) + 1
    return names


def _spans(backend: EmbeddedBackend, name: str) -> list[Span]:
    return [span for span in _all_spans(backend) if span.name == name]
