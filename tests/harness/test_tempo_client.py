"""TempoClient against the embedded backend (real OTLP in), an old v1-only Tempo shape, and no server."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hoptrace.harness._errors import BackendUnreachable
from hoptrace.harness.assertions._wait import wait_for_trace
from hoptrace.harness.launch._trace_client import new_trace_id
from hoptrace.harness.tempo._client import TempoClient
from tests.harness.otlp import Services, emit_order


def test_trace_by_id_round_trips_spans_sent_over_otlp(client: TempoClient, sdk_services: Services) -> None:
    trace_id = new_trace_id()
    emit_order(sdk_services, trace_id, "00000000000000aa", tenant="globex")
    trace = wait_for_trace(client, trace_id, until=lambda t: len(t) == 7, entry_span_id="00000000000000aa")
    assert trace.trace_id == trace_id
    assert trace.services == ["api", "inventory", "worker"]
    trace.assert_chain("api:SERVER > api:PRODUCER > worker:CONSUMER > worker:CLIENT > inventory:SERVER")
    trace.assert_attribute("tenant.id", "globex").assert_single_root().assert_no_orphans()
    assert client.get_trace(base64.b64encode(bytes.fromhex(trace_id)).decode()) is not None


def test_unknown_trace_is_none(client: TempoClient) -> None:
    assert client.get_trace(new_trace_id()) is None
    assert client.ready()


class _V1OnlyTempo(BaseHTTPRequestHandler):
    """Answers like a Tempo without the v2 API: 404 on /api/v2/..., v1 ``batches`` with base64 ids."""

    trace_id = "0af7651916cd43dd8448eb211c80319c"

    def do_GET(self) -> None:
        if self.path == f"/api/traces/{self.trace_id}":
            span = {
                "traceId": base64.b64encode(bytes.fromhex(self.trace_id)).decode(),
                "spanId": base64.b64encode(bytes.fromhex("b7ad6b7169203331")).decode(),
                "name": "GET /",
                "kind": "SPAN_KIND_SERVER",
                "startTimeUnixNano": "1",
                "endTimeUnixNano": "2",
            }
            resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "old"}}]}
            body = json.dumps(
                {"batches": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
            ).encode()
            self.send_response(200)
        else:
            body = b"404 page not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def v1_only_tempo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _V1OnlyTempo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_falls_back_to_v1_when_v2_is_missing(v1_only_tempo: str) -> None:
    with TempoClient(v1_only_tempo) as client:
        [span] = client.get_trace(_V1OnlyTempo.trace_id) or []
        assert (span.service_name, span.span_id) == ("old", "b7ad6b7169203331")
        assert client.get_trace(new_trace_id()) is None


def test_unreachable_backend_error_names_the_url() -> None:
    with TempoClient("http://127.0.0.1:9", timeout=1.0) as client:
        with pytest.raises(BackendUnreachable, match=r"http://127\.0\.0\.1:9 did not answer"):
            client.get_trace(new_trace_id())
        assert not client.ready()
