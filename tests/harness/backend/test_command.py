"""``hoptrace backend`` runs in the foreground, prints its endpoints, and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

HOPTRACE = str(Path(sys.executable).parent / "hoptrace")
READY = re.compile(r"tempo_api=(\S+) otlp_grpc=(\S+) otlp_http=(\S+)")


@pytest.fixture
def process() -> Iterator[subprocess.Popen[str]]:
    command = [HOPTRACE, "backend", "--http-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_backend_prints_endpoints_serves_and_stops_on_signal(
    process: subprocess.Popen[str], stop_signal: signal.Signals
) -> None:
    assert process.stdout is not None
    ready_line = process.stdout.readline()
    match = READY.search(ready_line)
    assert match is not None, ready_line
    tempo_url, _, otlp_http = match.groups()
    provider = TracerProvider(resource=Resource.create({"service.name": "cli-test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_http}/v1/traces")))
    with provider.get_tracer("t").start_as_current_span("hello") as span:
        pass
    provider.shutdown()

    response = httpx.get(f"{tempo_url}/api/traces/{span.get_span_context().trace_id:032x}", timeout=10)
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=20)

    assert response.status_code == 200
    assert process.returncode == 0, err
    assert "stopped" in out


@pytest.mark.parametrize("busy_flag", ["--http-port", "--otlp-grpc-port", "--otlp-http-port"])
def test_busy_port_is_a_clear_error_and_exit_1(busy_flag: str) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {"--http-port": "0", "--otlp-grpc-port": "0", "--otlp-http-port": "0"}
        ports[busy_flag] = str(busy.getsockname()[1])
        result = subprocess.run(
            [HOPTRACE, "backend", *(part for flag, port in ports.items() for part in (flag, port))],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot bind" in result.stderr
    assert "Traceback" not in result.stderr


def test_listening_sockets_are_tcp_so_responses_are_not_delayed() -> None:
    # asyncio sets TCP_NODELAY only on accepted sockets whose protocol is TCP; without it every
    # keep-alive answer waited ~40 ms for a delayed ACK.
    import socket

    from hoptrace.harness.backend._http_servers import bind_socket

    with bind_socket("127.0.0.1", 0) as listening:
        assert listening.proto == socket.IPPROTO_TCP
        with socket.create_connection(listening.getsockname()):
            accepted, _ = listening.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP


def test_bad_settings_are_a_clear_error_and_exit_2() -> None:
    result = subprocess.run(
        [
            HOPTRACE,
            "backend",
            "--max-spans",
            "0",
            "--http-port",
            "0",
            "--otlp-grpc-port",
            "0",
            "--otlp-http-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "store limits must be positive" in result.stderr
    result = subprocess.run(
        [HOPTRACE, "backend", "--forward-otlp", "ftp://tempo", "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "forward URL must be http(s)" in result.stderr
