"""``forward_otlp`` tees accepted requests to an upstream OTLP endpoint without ever blocking ingest."""

from __future__ import annotations

import socket

import httpx
import pytest

from hoptrace.harness.backend import EmbeddedBackend, OtlpForwarder

from .conftest import ServiceFactory
from .test_bad_input import PROTOBUF, request


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_accepted_spans_reach_the_upstream(protocol: str, service: ServiceFactory) -> None:
    with EmbeddedBackend() as upstream:
        url = upstream.otlp_http_endpoint if protocol == "http/protobuf" else upstream.otlp_grpc_endpoint
        with EmbeddedBackend(forward_otlp=url, forward_otlp_protocol=protocol) as tee:
            assert tee.forwarder is not None
            with httpx.Client(base_url=tee.otlp_http_endpoint) as client:
                assert client.post("/v1/traces", content=request(0x21, spans=2), headers=PROTOBUF).is_success
                json_body = {
                    "resourceSpans": [
                        {
                            "scopeSpans": [
                                {"spans": [{"traceId": "22" * 16, "spanId": "01" * 8, "name": "json"}]}
                            ]
                        }
                    ]
                }
                assert client.post("/v1/traces", json=json_body).is_success
                # Refused requests are not forwarded (the sender retries them).
                assert client.post("/v1/traces", content=b"junk", headers=PROTOBUF).status_code == 400

            assert tee.forwarder.flush(timeout_seconds=30)
            counters = tee.forwarder.counters()
            assert (counters.sent, counters.failed, counters.dropped) == (2, 0, 0)
            assert len(upstream.store.get_trace("21" * 16)) == 2
            assert [span.name for span in upstream.store.get_trace("22" * 16)] == ["json"]
            metrics = httpx.get(f"{tee.http_url}/metrics").text
            assert 'hoptrace_backend_forward_requests_total{outcome="sent"} 2.0' in metrics
            assert "forward_otlp=" in tee.endpoints_line()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_upstream_is_retried_counted_and_never_blocks_ingest() -> None:
    forwarder = OtlpForwarder(
        f"http://127.0.0.1:{_closed_port()}", max_attempts=2, initial_backoff_seconds=0.01, timeout_seconds=2
    )
    try:
        for index in range(3):
            forwarder.submit(request(index + 1))
        assert forwarder.flush(timeout_seconds=30)
        counters = forwarder.counters()
        assert (counters.sent, counters.failed, counters.queued_bytes) == (0, 3, 0)
    finally:
        forwarder.close()


def test_full_queue_drops_the_oldest_and_counts_it() -> None:
    body = request(1)
    forwarder = OtlpForwarder(
        f"http://127.0.0.1:{_closed_port()}",
        max_queued_bytes=len(body) * 2,
        max_attempts=1,
        timeout_seconds=2,
    )
    try:
        for _ in range(20):
            forwarder.submit(body)
        assert forwarder.flush(timeout_seconds=30)
        counters = forwarder.counters()
        assert counters.dropped >= 1
        assert counters.sent + counters.failed + counters.dropped == 20
    finally:
        forwarder.close()


@pytest.mark.parametrize(
    ("url", "protocol"),
    [("tempo:4317", "grpc"), ("ftp://tempo", "http/protobuf"), ("http://tempo", "thrift")],
)
def test_bad_forward_settings_fail_at_construction(url: str, protocol: str) -> None:
    with pytest.raises(ValueError):
        EmbeddedBackend(forward_otlp=url, forward_otlp_protocol=protocol)
