"""The backend's servers bound their clients: connection floods, slow clients and clients that leave."""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
import httpx

from hoptrace.harness import poll_until

from .backend_process import backend_process
from .test_bad_input import EXPORT, PROTOBUF, request

FLOOD = 400
"""Idle sockets opened against each port: more than the backend's descriptor limit allows."""


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@contextmanager
def _idle_sockets(address: tuple[str, int], count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(address, timeout=10))
            sockets.append(sock)
        yield sockets


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes ``sock`` (blocks up to the socket's timeout)."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def _low_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_behind_a_low_descriptor_limit_idle_floods_leave_every_port_reachable(tmp_path: Path) -> None:
    with backend_process(tmp_path, preexec_fn=_low_descriptor_limit) as backend, ExitStack() as floods:
        for url in (backend.tempo_url, backend.otlp_http, f"http://{backend.otlp_grpc}"):
            floods.enter_context(_idle_sockets(_address(url), FLOOD))

        with httpx.Client(timeout=10) as client:
            assert client.get(f"{backend.tempo_url}/ready").text == "ready"
            response = client.post(f"{backend.otlp_http}/v1/traces", content=request(0x71), headers=PROTOBUF)
            assert response.status_code == 200
            assert client.get(f"{backend.tempo_url}/api/v2/traces/{'71' * 16}").status_code == 200
            metrics = client.get(f"{backend.tempo_url}/metrics").text
        assert 'hoptrace_backend_http_connections_closed_total{reason="evicted_waiting"}' in metrics
        floods.close()
        with grpc.insecure_channel(backend.otlp_grpc) as channel:
            export = channel.unary_unary(EXPORT)

            def exported() -> bool:
                # gRPC notices the flood's sockets closing in its own time; until then it refuses.
                try:
                    return export(request(0x72), timeout=10) is not None
                except grpc.RpcError:
                    return False

            poll_until(exported, timeout=60, what="gRPC ingest once the flood is gone")
        log = backend.log()
    assert len(log) < 10_000, log[-3000:]


def test_slow_headers_and_bodies_are_cut_off_and_a_client_leaving_mid_body_logs_no_traceback(
    tmp_path: Path,
) -> None:
    timeouts = ("--header-timeout-seconds", "0.3", "--body-timeout-seconds", "0.3")
    with backend_process(tmp_path, *timeouts) as backend:
        api, otlp = _address(backend.tempo_url), _address(backend.otlp_http)
        with socket.create_connection(api, timeout=20) as idle:
            assert _closed_by_server(idle)
        with socket.create_connection(api, timeout=20) as slow_header:
            slow_header.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n")
            assert _closed_by_server(slow_header)
        post = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        with socket.create_connection(otlp, timeout=20) as slow_body:
            slow_body.sendall(post + b"Content-Length: 1000\r\n\r\n" + b"\x0a" * 10)
            assert _closed_by_server(slow_body)
        with socket.create_connection(otlp, timeout=20) as leaving:
            leaving.sendall(post + b"Content-Length: 100000\r\n\r\n" + b"\x0a" * 10)

        with httpx.Client(base_url=backend.tempo_url, timeout=10) as client:
            poll_until(
                lambda: (
                    'hoptrace_backend_requests_total{outcome="invalid"} 2.0' in client.get("/metrics").text
                ),
                timeout=30,
                what="both abandoned bodies to be counted",
            )
            metrics = client.get("/metrics").text
            assert client.get("/ready").text == "ready"
        assert 'hoptrace_backend_http_connections_closed_total{reason="timed_out"} 3.0' in metrics
    assert "Traceback" not in backend.log()
