"""A traced service keeps serving while its trace backend is down; lost spans are counted, logged once."""

from __future__ import annotations

import json
import urllib.request

from hoptrace.harness import ServiceLauncher, free_port


def test_service_serves_while_the_backend_is_down_and_counts_dropped_spans() -> None:
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    env = {
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "OTEL_BSP_MAX_QUEUE_SIZE": "64",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
    }
    with ServiceLauncher(nobody_listens, export_delay_ms=100, env=env) as launcher:
        service = launcher.start_asgi("inventory", "hoptrace.harness.demo.inventory:app")
        for _ in range(200):
            with urllib.request.urlopen(f"{service.url}/stock/widget", timeout=30) as response:
                assert json.loads(response.read())["item"] == "widget"
        reasons = "OTLP export over grpc failed|the export queue is full"
        service.process.wait_for_log(rf"hoptrace: dropped \d+ span\(s\): ({reasons})", timeout=30)
        assert service.log().count("hoptrace: dropped") == 1, "further drops are only counted"
