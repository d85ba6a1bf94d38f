"""A traced service keeps serving while its trace backend is down; lost spans are counted, logged once."""

from __future__ import annotations

import json
import socket
import urllib.request

from tests.tracing.processes import start_uvicorn, traced_env


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_service_serves_while_the_backend_is_down_and_counts_dropped_spans() -> None:
    env = traced_env(
        None,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
        OTEL_BSP_MAX_QUEUE_SIZE="64",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="16",
    )
    service, url = start_uvicorn("inventory", "tests.tracing.apps.inventory:app", env)
    with service:
        for item in range(200):
            with urllib.request.urlopen(f"{url}/items/{item}", timeout=30) as response:
                assert json.loads(response.read())["item"] == str(item)
        reasons = "OTLP export over grpc failed|the export queue is full"
        service.wait_for_line(rf"hoptrace: dropped \d+ span\(s\): ({reasons})")
    assert service.output().count("hoptrace: dropped") == 1, "further drops are only counted"
