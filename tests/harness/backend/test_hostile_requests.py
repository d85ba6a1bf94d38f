"""Requests that used to take the backend down (issue 15's attack run) get bounded answers."""

from __future__ import annotations

import gzip
import json
import multiprocessing

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.harness.backend._decode import MAX_VALUE_DEPTH, TRUNCATED, truncations
from hoptrace.harness.backend._json_pool import OFF_PROCESS_BYTES
from hoptrace.harness.backend._tempo_api import MAX_SEARCH_LIMIT

from .test_bad_input import PROTOBUF, request

JSON = {"Content-Type": "application/json"}


def _nested_kvlist_request(depth: int) -> bytes:
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "svc"
    span = resource_spans.scope_spans.add().spans.add(trace_id=b"\x07" * 16, span_id=b"\x01" * 8, name="deep")
    value: AnyValue = span.attributes.add(key="nested").value
    for _ in range(depth):
        value = value.kvlist_value.values.add(key='k"\\').value
    value.string_value = 'leaf "quoted"'
    data: bytes = message.SerializeToString()
    return data


def test_a_deeply_nested_kvlist_costs_its_own_size_and_is_cut_at_the_depth_limit(
    otlp_http: httpx.Client, tempo: httpx.Client, backend: EmbeddedBackend
) -> None:
    body = _nested_kvlist_request(30)
    assert len(body) < 600
    assert otlp_http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    before = truncations()

    (span,) = backend.store.get_trace("07" * 16)
    nested = span.attributes["nested"]
    assert isinstance(nested, str) and len(nested) < 10 * len(body)
    document = json.loads(nested)
    for _ in range(MAX_VALUE_DEPTH):
        document = document['k"\\']
    assert document == TRUNCATED
    assert truncations() > before
    for path in ("/api/search?q={}", "/api/search/tags", "/api/v2/search/tag/.nested/values"):
        response = tempo.get(path)
        assert response.status_code == 200 and len(response.content) < 10_000, path


def test_json_nested_beyond_any_limit_is_400_and_the_server_keeps_serving(
    otlp_http: httpx.Client, backend: EmbeddedBackend
) -> None:
    value = '{"stringValue": "leaf"}'
    for _ in range(600):
        value = '{"kvlistValue": {"values": [{"key": "k", "value": ' + value + "}]}}"
    span = '{"traceId": "' + "08" * 16 + '", "spanId": "' + "01" * 8 + '", "name": "x", '
    span += '"attributes": [{"key": "deep", "value": ' + value + "}]}"
    body = '{"resourceSpans": [{"scopeSpans": [{"spans": [' + span + "]}]}]}"
    brackets = "[" * 5000 + "]" * 5000

    for document in (body, brackets):
        response = otlp_http.post("/v1/traces", content=document.encode(), headers=JSON)
        assert response.status_code == 400, response.text
        assert "nested too deeply" in response.json()["message"]
    assert backend.store.get_trace("08" * 16) == []
    assert otlp_http.post("/v1/traces", content=request(0x42), headers=PROTOBUF).status_code == 200


def test_every_member_of_a_multi_member_gzip_body_is_stored(
    otlp_http: httpx.Client, backend: EmbeddedBackend
) -> None:
    first, second = request(0x51, spans=2), request(0x51, spans=3, name="second")
    # Two concatenated protobuf messages are one message whose repeated fields concatenate.
    body = gzip.compress(first) + gzip.compress(second)

    response = otlp_http.post("/v1/traces", content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"})

    assert response.status_code == 200
    names = sorted(span.name for span in backend.store.get_trace("51" * 16))
    assert names == ["op", "op", "second", "second", "second"]


def test_a_400_digit_duration_is_400(tempo: httpx.Client) -> None:
    for name in ("minDuration", "maxDuration"):
        response = tempo.get("/api/search", params={name: "9" * 400 + "s"})
        assert response.status_code == 400 and name in response.text
        response = tempo.get("/api/search", params={name: "9" * 29 + "h"})
        assert response.status_code == 400 and "largest duration" in response.text


def test_a_huge_search_limit_is_capped(otlp_http: httpx.Client, tempo: httpx.Client) -> None:
    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    for index in range(MAX_SEARCH_LIMIT + 50):
        spans.add(trace_id=(index + 1).to_bytes(16, "big"), span_id=b"\x01" * 8, name="op")
    body = message.SerializeToString()
    assert otlp_http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200

    response = tempo.get("/api/search", params={"limit": str(10**9), "spss": str(10**9)})

    assert response.status_code == 200
    assert len(response.json()["traces"]) == MAX_SEARCH_LIMIT


def test_a_large_json_body_is_decoded_in_a_worker_process_and_stored(
    otlp_http: httpx.Client, backend: EmbeddedBackend
) -> None:
    spans = [
        {"traceId": "09" * 16, "spanId": f"{index + 1:016x}", "name": "x" * 200} for index in range(8000)
    ]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    assert len(body) > OFF_PROCESS_BYTES

    response = otlp_http.post("/v1/traces", content=body, headers=JSON)

    assert response.status_code == 200, response.text
    assert len(backend.store.get_trace("09" * 16)) == 8000
    # protobuf's JSON parser is pure Python: in this process it would hold the interpreter lock that
    # /ready and the gRPC receiver need.
    assert multiprocessing.active_children()
    assert httpx.get(f"{backend.http_url}/ready").text == "ready"


def test_a_query_past_its_deadline_is_504_and_ingest_goes_on() -> None:
    with EmbeddedBackend(query_timeout_seconds=1e-9) as backend, httpx.Client(timeout=10) as client:
        otlp = f"{backend.otlp_http_endpoint}/v1/traces"
        assert client.post(otlp, content=request(0x61), headers=PROTOBUF).status_code == 200

        # Tag names and most tag values are answered from catalogues without a query's work (see
        # test_tags_right_after_ingest.py); filtered by q, or of root spans, they read traces.
        for path in (
            "/api/search?q={}",
            '/api/v2/search/tags?q={ name = "x" }',
            "/api/v2/search/tag/rootName/values",
        ):
            response = client.get(f"{backend.http_url}{path}")
            assert response.status_code == 504, path
            assert "deadline exceeded" in response.text

        assert client.post(otlp, content=request(0x62), headers=PROTOBUF).status_code == 200
        assert "hoptrace_backend_query_timeouts_total 3.0" in client.get(f"{backend.http_url}/metrics").text


def test_a_backtracking_regex_search_answers_at_once_and_ingest_goes_on(
    otlp_http: httpx.Client, tempo: httpx.Client
) -> None:
    # Python's re needed 2^n steps for this pattern over n characters: 4.4 s at 26, with ingest frozen.
    body = request(0x81, name="a" * 5000 + "b")
    assert otlp_http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200

    response = tempo.get("/api/search", params={"q": '{ name =~ "(a+)+$" }'})

    assert response.status_code == 200 and response.json()["traces"] == []
    assert otlp_http.post("/v1/traces", content=request(0x82), headers=PROTOBUF).status_code == 200
